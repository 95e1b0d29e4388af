package derp

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/openderp/openderp/key"
)

// A ClientOpt configures a Client made by NewClient.
type ClientOpt interface {
	apply(*clientOpts)
}

type clientOpts struct {
	meshKey     string
	isProber    bool
	canAckPings bool
	appName     string
	serverPub   key.NodePublic
}

type clientOptFunc func(*clientOpts)

func (f clientOptFunc) apply(o *clientOpts) { f(o) }

// MeshKey makes the client present k, the region's shared mesh key, so the
// server grants it the mesh-peer privileges (ForwardPacket,
// WatchConnectionChanges, ClosePeer). An empty k presents none.
func MeshKey(k string) ClientOpt {
	return clientOptFunc(func(o *clientOpts) { o.meshKey = k })
}

// IsProber makes the client declare itself a monitoring prober.
func IsProber(v bool) ClientOpt {
	return clientOptFunc(func(o *clientOpts) { o.isProber = v })
}

// CanAckPings tells the server that the client answers its pings.
func CanAckPings(v bool) ClientOpt {
	return clientOptFunc(func(o *clientOpts) { o.canAckPings = v })
}

// AppName makes the client declare name as its application name, which
// servers since v1.104 show on their debug pages and in PeerPresent, and
// may refuse (-disallow-app-names). Older servers ignore it. NewClient
// fails with an *InvalidAppNameError if ValidAppName refuses name.
func AppName(name string) ClientOpt {
	return clientOptFunc(func(o *clientOpts) { o.appName = name })
}

// ServerPublicKey gives the client the server's public key in advance,
// for instance from the TLS meta certificate. The client then does not
// wait for the server's greeting before sending its own; the greeting is
// skipped when it arrives.
func ServerPublicKey(k key.NodePublic) ClientOpt {
	return clientOptFunc(func(o *clientOpts) { o.serverPub = k })
}

// Client is the client side of one DERP connection. Its send methods may
// be called from any goroutine; Recv and RecvInto must be called from one
// goroutine at a time.
//
// A Client does not reconnect. Once a receive fails the connection is dead
// and every later receive returns the same error.
type Client struct {
	priv      key.NodePrivate // set once
	pub       key.NodePublic  // set once
	serverPub key.NodePublic  // set once
	nc        Conn            // set once
	logf      Logf            // set once
	meshKey   string          // set once

	wmu     sync.Mutex
	bw      *bufio.Writer // guarded by wmu
	limiter *rate.Limiter // guarded by wmu; nil when the server set no rate
	werr    error         // guarded by wmu; sticky write error

	br   *bufio.Reader // owned by the receiving goroutine
	rbuf []byte        // owned by the receiving goroutine
	rerr atomic.Pointer[error]

	closed atomic.Bool
}

// NewClient runs the client half of the DERP handshake over nc, which is
// already connected to the server (by TCP, TLS, an HTTP upgrade or a
// WebSocket). brw must read from and write to nc; it may already hold bytes
// the server sent. Unless the ServerPublicKey option is given, NewClient
// reads the server's greeting to learn its key. It then sends the sealed
// client information and returns without waiting for the server's reply,
// which Recv later returns as a ServerInfoMessage.
func NewClient(priv key.NodePrivate, nc Conn, brw *bufio.ReadWriter, logf Logf, opts ...ClientOpt) (*Client, error) {
	if priv.IsZero() {
		return nil, fmt.Errorf("derp: new client: %w", ErrZeroKey)
	}
	var o clientOpts
	for _, opt := range opts {
		opt.apply(&o)
	}
	if !ValidAppName(o.appName) {
		return nil, fmt.Errorf("derp: new client: %w", &InvalidAppNameError{Name: o.appName})
	}
	c := &Client{
		priv:      priv,
		pub:       priv.Public(),
		serverPub: o.serverPub,
		nc:        nc,
		logf:      logf,
		meshKey:   o.meshKey,
		bw:        brw.Writer,
		br:        brw.Reader,
	}
	if c.serverPub.IsZero() {
		pub, err := c.readServerKey()
		if err != nil {
			return nil, fmt.Errorf("derp: reading server key: %w", err)
		}
		c.serverPub = pub
	}
	info := clientInfo{
		MeshKey:     wireMeshKey(o.meshKey),
		Version:     ProtocolVersion,
		CanAckPings: o.canAckPings,
		IsProber:    o.isProber,
		AppName:     o.appName,
	}
	if err := c.sendClientInfo(&info); err != nil {
		return nil, fmt.Errorf("derp: sending client info: %w", err)
	}
	return c, nil
}

func (c *Client) readServerKey() (key.NodePublic, error) {
	t, p, err := ReadFrame(c.br, maxServerKeyLen, nil)
	if err != nil {
		return key.NodePublic{}, err
	}
	if t != FrameServerKey {
		return key.NodePublic{}, fmt.Errorf("%w: got %v, want %v", ErrUnexpectedFrame, t, FrameServerKey)
	}
	pub, err := parseServerKey(p)
	if err != nil {
		return key.NodePublic{}, err
	}
	if pub.IsZero() {
		return key.NodePublic{}, ErrZeroKey
	}
	return pub, nil
}

func (c *Client) sendClientInfo(info *clientInfo) error {
	js, err := json.Marshal(info)
	if err != nil {
		return err
	}
	sealed, err := c.priv.SealTo(c.serverPub, js)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := WriteFrame(c.bw, FrameClientInfo, appendClientInfo(make([]byte, 0, KeyLen+len(sealed)), c.pub, sealed)); err != nil {
		return err
	}
	return c.bw.Flush()
}

// ServerPublicKey returns the server's public key.
func (c *Client) ServerPublicKey() key.NodePublic { return c.serverPub }

// PublicKey returns the client's own public key.
func (c *Client) PublicKey() key.NodePublic { return c.pub }

// LocalAddr returns the local address of the underlying connection.
func (c *Client) LocalAddr() (netip.AddrPort, error) {
	a := c.nc.LocalAddr()
	if a == nil {
		return netip.AddrPort{}, errors.New("derp: connection has no local address")
	}
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort(), nil
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("derp: parsing local address: %w", err)
	}
	return ap, nil
}

// Send sends pkt to the client with public key dst. Packets larger than
// MaxPacketSize are refused with ErrPacketTooLarge. If the server has set
// a rate limit and it is exhausted, the packet is dropped silently and
// Send reports success, as the server would have dropped it anyway.
func (c *Client) Send(dst key.NodePublic, pkt []byte) error {
	if len(pkt) > MaxPacketSize {
		return ErrPacketTooLarge
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.limiter != nil && !c.limiter.AllowN(time.Now(), FrameHeaderLen+KeyLen+len(pkt)) {
		return nil
	}
	return c.writeLocked(func(bw *bufio.Writer) error {
		if err := WriteFrameHeader(bw, FrameSendPacket, uint32(KeyLen+len(pkt))); err != nil {
			return err
		}
		if err := writeKey(bw, dst); err != nil {
			return err
		}
		_, err := bw.Write(pkt)
		return err
	})
}

// ForwardPacket sends pkt to dst on behalf of src. Only a mesh peer (a
// client created with the server's MeshKey) may forward; the server closes
// the connection of any other client that tries.
func (c *Client) ForwardPacket(src, dst key.NodePublic, pkt []byte) error {
	if len(pkt) > MaxPacketSize {
		return ErrPacketTooLarge
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(func(bw *bufio.Writer) error {
		if err := WriteFrameHeader(bw, FrameForwardPacket, uint32(2*KeyLen+len(pkt))); err != nil {
			return err
		}
		if err := writeKey(bw, src); err != nil {
			return err
		}
		if err := writeKey(bw, dst); err != nil {
			return err
		}
		_, err := bw.Write(pkt)
		return err
	})
}

// SendPing sends a ping; the server answers with a PongMessage carrying
// the same data.
func (c *Client) SendPing(data [8]byte) error { return c.sendSmall(FramePing, data[:]) }

// SendPong answers a PingMessage from the server with the same data.
func (c *Client) SendPong(data [8]byte) error { return c.sendSmall(FramePong, data[:]) }

// NotePreferred tells the server whether it is this client's home server.
// It only affects the server's statistics.
func (c *Client) NotePreferred(preferred bool) error {
	var b byte
	if preferred {
		b = 1
	}
	return c.sendSmall(FrameNotePreferred, []byte{b})
}

// WatchConnectionChanges asks the server to report every client that
// connects (PeerPresentMessage) and every key that leaves
// (PeerGoneMessage). It requires the mesh key.
func (c *Client) WatchConnectionChanges() error { return c.sendSmall(FrameWatchConns, nil) }

// ClosePeer asks the server to close every connection of the client with
// key target. It requires the mesh key.
func (c *Client) ClosePeer(target key.NodePublic) error {
	raw := target.Raw32()
	return c.sendSmall(FrameClosePeer, raw[:])
}

func (c *Client) sendSmall(t FrameType, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(func(bw *bufio.Writer) error {
		return WriteFrame(bw, t, payload)
	})
}

// writeLocked runs write and flushes. A failed write leaves a partial frame
// on the wire, so the error sticks: later sends fail the same way.
func (c *Client) writeLocked(write func(*bufio.Writer) error) error {
	if c.werr != nil {
		return c.werr
	}
	if c.closed.Load() {
		return ErrClientClosed
	}
	err := write(c.bw)
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		c.werr = fmt.Errorf("derp: writing to server: %w", err)
		return c.werr
	}
	return nil
}

// Recv returns the next message from the server. Received packets are
// returned as ReceivedPacket values whose Data aliases an internal buffer,
// valid until the next call to Recv or RecvInto. Frames the client does not
// understand are skipped.
//
// Once Recv returns an error, the connection is dead: every later call
// returns the same error.
func (c *Client) Recv() (ReceivedMessage, error) {
	var p ReceivedPacket
	m, err := c.RecvInto(&p)
	if m == &p {
		return p, nil
	}
	return m, err
}

// RecvInto is like Recv but stores a received packet in *p and returns p
// itself, so a receive loop can run without allocating. Other messages are
// returned as values, as by Recv.
func (c *Client) RecvInto(p *ReceivedPacket) (ReceivedMessage, error) {
	if e := c.rerr.Load(); e != nil {
		return nil, *e
	}
	m, err := c.recv(p)
	if err != nil {
		return nil, c.setRecvErr(err)
	}
	return m, nil
}

// setRecvErr records the error that ended the connection and returns the
// one recorded first.
func (c *Client) setRecvErr(err error) error {
	if c.closed.Load() {
		err = fmt.Errorf("%w: %w", ErrClientClosed, err)
	} else {
		err = fmt.Errorf("derp: receiving: %w", err)
	}
	c.rerr.CompareAndSwap(nil, &err)
	return *c.rerr.Load()
}

func (c *Client) recv(p *ReceivedPacket) (ReceivedMessage, error) {
	for {
		t, n, err := ReadFrameHeader(c.br)
		if err != nil {
			return nil, err
		}
		if n > maxClientFrameLen {
			return nil, &FrameTooLargeError{Type: t, Len: n, Max: maxClientFrameLen}
		}
		if uint32(cap(c.rbuf)) < n {
			c.rbuf = make([]byte, max(n, 2048))
		}
		b := c.rbuf[:n]
		if _, err := io.ReadFull(c.br, b); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("reading %v payload: %w", t, err)
		}
		m, err := c.decode(t, b, p)
		if err != nil {
			return nil, err
		}
		if m != nil {
			return m, nil
		}
	}
}

// decode turns one frame into a message. It returns a nil message for
// frames to skip, and an error only for problems that end the connection.
func (c *Client) decode(t FrameType, b []byte, p *ReceivedPacket) (ReceivedMessage, error) {
	switch t {
	case FrameRecvPacket:
		src, pkt, err := parseRecvPacket(b)
		if err != nil {
			c.logf.printf("derp: skipping frame: %v", err)
			return nil, nil
		}
		p.Source, p.Data = src, pkt
		return p, nil
	case FrameServerInfo:
		return c.decodeServerInfo(b)
	case FrameKeepAlive:
		return KeepAliveMessage{}, nil
	case FramePeerGone:
		m, err := parsePeerGone(b)
		if err != nil {
			c.logf.printf("derp: skipping frame: %v", err)
			return nil, nil
		}
		return m, nil
	case FramePeerPresent:
		m, err := parsePeerPresent(b)
		if err != nil {
			c.logf.printf("derp: skipping frame: %v", err)
			return nil, nil
		}
		if len(b) > peerPresentLen && len(b)-peerPresentLen-1 < int(b[peerPresentLen]) {
			c.logf.printf("derp: PeerPresent for %v: app name shorter than its length byte; ignored", m.Key.ShortString())
		}
		return m, nil
	case FramePing, FramePong:
		d, err := parsePing(t, b)
		if err != nil {
			c.logf.printf("derp: skipping frame: %v", err)
			return nil, nil
		}
		if t == FramePing {
			return PingMessage(d), nil
		}
		return PongMessage(d), nil
	case FrameHealth:
		return HealthMessage{Problem: string(b)}, nil
	case FrameRestarting:
		m, err := parseRestarting(b)
		if err != nil {
			c.logf.printf("derp: skipping frame: %v", err)
			return nil, nil
		}
		return m, nil
	default:
		// Includes the ServerKey greeting a fast-start or pre-keyed
		// client receives after it has already sent its ClientInfo.
		return nil, nil
	}
}

func (c *Client) decodeServerInfo(b []byte) (ReceivedMessage, error) {
	if len(b) < NonceLen || len(b) > NonceLen+maxInfoLen {
		return nil, malformed(FrameServerInfo, len(b), "bad length")
	}
	js, ok := c.priv.OpenFrom(c.serverPub, b)
	if !ok {
		return nil, fmt.Errorf("opening server info: %w", ErrCannotOpenBox)
	}
	var info serverInfo
	if err := json.Unmarshal(js, &info); err != nil {
		return nil, fmt.Errorf("decoding server info: %w", err)
	}
	c.wmu.Lock()
	if info.TokenBucketBytesPerSecond > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(info.TokenBucketBytesPerSecond), info.TokenBucketBytesBurst)
	} else {
		c.limiter = nil
	}
	c.wmu.Unlock()
	return ServerInfoMessage{
		TokenBucketBytesPerSecond: info.TokenBucketBytesPerSecond,
		TokenBucketBytesBurst:     info.TokenBucketBytesBurst,
	}, nil
}

// Close closes the connection. A Recv blocked in another goroutine returns
// an error wrapping ErrClientClosed.
func (c *Client) Close() error {
	c.closed.Store(true)
	return c.nc.Close()
}
