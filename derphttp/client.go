package derphttp

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derpmap"
	"github.com/openderp/openderp/key"
)

// Timeouts of the client.
const (
	// connectTimeout bounds a whole connect: DNS, TCP, TLS, the HTTP
	// upgrade and the DERP handshake.
	connectTimeout = 10 * time.Second
	// nodeDialTimeout bounds the TCP dial of one region node.
	nodeDialTimeout = 1500 * time.Millisecond
	// recvTimeout is how long a receive waits for any frame; the server
	// sends keep-alives every minute, so silence means a dead connection.
	recvTimeout = 120 * time.Second
	// forwardTimeout bounds writing one forwarded packet to a mesh peer.
	forwardTimeout = 5 * time.Second
	// pingTimeout caps Ping.
	pingTimeout = 5 * time.Second
)

var (
	// ErrClientClosed is returned by every method of a closed Client.
	ErrClientClosed = errors.New("derphttp.Client closed")
	// ErrNotConnected is returned by methods that never connect, such as
	// SendPing and LocalAddr, when the Client has no connection.
	ErrNotConnected = errors.New("derphttp: client not connected")
)

// Client is a DERP client that dials its server over HTTP(S) or WebSocket.
// It connects on first use and, when a call fails, drops the connection so
// that the next call reconnects. After the server has announced a restart
// (Recv returns a derp.ServerRestartingMessage), that reconnect waits for
// the advised delay, with jitter, and keeps trying for the advised period. Its methods are safe for concurrent use,
// except that Recv must be called from one goroutine at a time.
//
// The exported fields configure the Client and must be set before its
// first use.
type Client struct {
	// TLSConfig, if non-nil, is the base TLS configuration. The client
	// fills in ServerName (and verification for a node's CertName).
	TLSConfig *tls.Config

	// MeshKey, if set, is presented to the server to be treated as a mesh
	// peer.
	MeshKey string

	// IsProber declares the client a monitoring prober.
	IsProber bool

	// AppName, if set, is declared to the server as the client's
	// application name (see derp.AppName). Connecting fails if it is not
	// a valid name.
	AppName string

	// WatchConnectionChanges makes every connection ask the server for
	// PeerPresent and PeerGone messages. It needs MeshKey.
	WatchConnectionChanges bool

	// OnWatchConnect, if non-nil, is called by RunWatchConnectionLoop,
	// on its goroutine, each time it has connected to a server other than
	// the one it ignores, before it reads from the connection. It must not
	// block.
	OnWatchConnect func()

	// BaseContext, if non-nil, returns the context connects run under, on
	// top of the caller's.
	BaseContext func() context.Context

	// UseWebSocket makes the client carry DERP in WebSocket messages
	// instead of upgrading an HTTP connection. The environment variable
	// TS_DEBUG_DERP_WS_CLIENT=true turns it on too.
	UseWebSocket bool

	priv      key.NodePrivate                  // set once
	pub       key.NodePublic                   // set once
	logf      derp.Logf                        // set once
	url       *url.URL                         // set once; nil for region clients
	getRegion func() *derpmap.Region           // set once; nil for URL clients
	ctx       context.Context                  // set once; cancelled by Close
	cancel    context.CancelFunc               // set once
	proxyFunc func(*url.URL) (*url.URL, error) // set once; environment proxy lookup

	// Set by their setters before first use.
	dialer        func(ctx context.Context, network, addr string) (net.Conn, error)
	preferIPv6    func() bool
	canAckPings   atomic.Bool
	watchRetry    time.Duration // RunWatchConnectionLoop's back-off; tests shorten it
	forceHTTPOnly bool          // TS_DEBUG_USE_DERP_HTTP, read at construction

	mu        sync.Mutex           // held during connects
	closed    bool                 // guarded by mu
	conn      *conn                // guarded by mu; nil when not connected
	connGen   int                  // guarded by mu; incremented per successful connect
	preferred bool                 // guarded by mu
	serverPub key.NodePublic       // guarded by mu; key of the last server connected to
	tlsState  *tls.ConnectionState // guarded by mu
	restart   restartPlan          // guarded by mu; see restart.go

	cur atomic.Pointer[conn] // snapshot of conn for calls that never connect

	pingMu sync.Mutex
	pings  map[[8]byte]chan struct{} // guarded by pingMu; outstanding Ping calls
}

// conn is one established DERP connection.
type conn struct {
	dc        *derp.Client   // set once
	nc        net.Conn       // set once; what dc speaks over (TLS, TCP or WebSocket)
	gen       int            // set once
	node      string         // set once; name of the region node dialed, if any
	localAddr netip.AddrPort // set once; invalid over WebSocket
	fwdMu     sync.Mutex     // serialises ForwardPacket write deadlines
}

// NewClient returns a client for the DERP server at serverURL, such as
// "https://derp.example.net/derp". The URL's scheme must be http or https
// unless it has an explicit port. Nothing is dialed until the client is
// used.
func NewClient(priv key.NodePrivate, serverURL string, logf derp.Logf) (*Client, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, fmt.Errorf("derphttp: parsing server URL: %w", err)
	}
	if u.Port() == "" && u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("derphttp: invalid URL scheme %q", u.Scheme)
	}
	c := newClient(priv, logf)
	c.url = u
	return c, nil
}

// NewRegionClient returns a client for a DERP region. getRegion is called
// on every connect, so the client follows changes of the DERP map; it
// connects to the first node, in order, that it can reach and that is not
// STUN-only.
func NewRegionClient(priv key.NodePrivate, logf derp.Logf, getRegion func() *derpmap.Region) *Client {
	c := newClient(priv, logf)
	c.getRegion = getRegion
	return c
}

func newClient(priv key.NodePrivate, logf derp.Logf) *Client {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		priv:       priv,
		pub:        priv.Public(),
		logf:       logf,
		ctx:        ctx,
		cancel:     cancel,
		proxyFunc:  envProxy,
		watchRetry: 5 * time.Second,
		pings:      make(map[[8]byte]chan struct{}),
	}
	c.UseWebSocket, _ = strconv.ParseBool(os.Getenv("TS_DEBUG_DERP_WS_CLIENT"))
	c.forceHTTPOnly, _ = strconv.ParseBool(os.Getenv("TS_DEBUG_USE_DERP_HTTP"))
	return c
}

// SetURLDialer makes a URL client dial TCP with dial instead of the
// platform dialer. derper uses it to reach mesh peers.
func (c *Client) SetURLDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) {
	c.dialer = dial
}

// SetAddressFamilySelector sets a function reporting whether IPv6 is
// currently preferred. When it is, region dials give IPv6 a 200 ms head
// start.
func (c *Client) SetAddressFamilySelector(preferIPv6 func() bool) { c.preferIPv6 = preferIPv6 }

// SetCanAckPings sets whether future connections tell the server that the
// client answers its pings.
func (c *Client) SetCanAckPings(v bool) { c.canAckPings.Store(v) }

func (c *Client) printf(format string, args ...any) {
	if c.logf != nil {
		c.logf(format, args...)
	}
}

// String describes the client's target, for logs and for
// derp.PacketForwarder.
func (c *Client) String() string {
	return "derphttp.Client{" + c.target() + "}"
}

func (c *Client) target() string {
	if c.url != nil {
		return c.url.String()
	}
	if r := c.getRegion(); r != nil {
		return fmt.Sprintf("region %d (%s)", r.RegionID, r.RegionCode)
	}
	return "region (unknown)"
}

// Connect connects the client if it is not connected yet.
func (c *Client) Connect(ctx context.Context) error {
	_, err := c.connect(ctx, "derphttp.Client.Connect")
	return err
}

// SelfPublicKey returns the client's own public key.
func (c *Client) SelfPublicKey() key.NodePublic { return c.pub }

// ServerPublicKey returns the key of the server the client last
// connected to, or the zero key before the first connection.
func (c *Client) ServerPublicKey() key.NodePublic {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.serverPub
}

// TLSConnectionState returns the TLS state of the current connection, if
// it runs over TLS.
func (c *Client) TLSConnectionState() (*tls.ConnectionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tlsState, c.tlsState != nil
}

// LocalAddr returns the local address of the current connection without
// connecting.
func (c *Client) LocalAddr() (netip.AddrPort, error) {
	cc := c.cur.Load()
	if cc == nil {
		return netip.AddrPort{}, ErrNotConnected
	}
	if !cc.localAddr.IsValid() {
		return netip.AddrPort{}, errors.New("derphttp: connection has no local IP address")
	}
	return cc.localAddr, nil
}

// Send sends pkt to the client with public key dst, connecting first if
// needed. A failure drops the connection; the next call reconnects.
func (c *Client) Send(dst key.NodePublic, pkt []byte) error {
	cc, err := c.connect(context.Background(), "derphttp.Client.Send")
	if err != nil {
		return err
	}
	if err := cc.dc.Send(dst, pkt); err != nil {
		c.closeForReconnect(cc)
		return err
	}
	return nil
}

// ForwardPacket forwards pkt from src to dst through a mesh peer. With it
// a Client is a derp.PacketForwarder. The write is abandoned, and the
// connection dropped, if it takes more than five seconds.
func (c *Client) ForwardPacket(src, dst key.NodePublic, pkt []byte) error {
	cc, err := c.connect(context.Background(), "derphttp.Client.ForwardPacket")
	if err != nil {
		return err
	}
	// A write deadline instead of a watchdog timer keeps the mesh relay
	// path free of allocations.
	// See docs/compat.md#forward-timeout.
	cc.fwdMu.Lock()
	cc.nc.SetWriteDeadline(time.Now().Add(forwardTimeout))
	err = cc.dc.ForwardPacket(src, dst, pkt)
	cc.nc.SetWriteDeadline(time.Time{})
	cc.fwdMu.Unlock()
	if err != nil {
		c.closeForReconnect(cc)
		return err
	}
	return nil
}

// ClosePeer asks the server to close the connections of target, which
// needs the mesh key.
func (c *Client) ClosePeer(target key.NodePublic) error {
	cc, err := c.connect(context.Background(), "derphttp.Client.ClosePeer")
	if err != nil {
		return err
	}
	if err := cc.dc.ClosePeer(target); err != nil {
		c.closeForReconnect(cc)
		return err
	}
	return nil
}

// NotePreferred records whether this server is the client's home and
// tells the server if connected. Every later connection repeats a true
// preference right after its handshake.
func (c *Client) NotePreferred(preferred bool) {
	c.mu.Lock()
	if c.preferred == preferred {
		c.mu.Unlock()
		return
	}
	c.preferred = preferred
	cc := c.conn
	c.mu.Unlock()
	if cc != nil {
		if err := cc.dc.NotePreferred(preferred); err != nil {
			c.printf("derphttp: NotePreferred: %v", err)
			c.closeForReconnect(cc)
		}
	}
}

// SendPing sends a ping frame on the current connection without
// connecting; the server's pong arrives through Recv.
func (c *Client) SendPing(data [8]byte) error {
	cc := c.cur.Load()
	if cc == nil {
		return ErrNotConnected
	}
	return cc.dc.SendPing(data)
}

// SendPong answers a ping from the server on the current connection. The
// client never answers pings by itself.
func (c *Client) SendPong(data [8]byte) error {
	cc := c.cur.Load()
	if cc == nil {
		return ErrNotConnected
	}
	return cc.dc.SendPong(data)
}

// Ping sends a ping to the server and waits, at most five seconds or until
// ctx ends, for its pong. It does not connect, and it needs another
// goroutine running Recv to receive the pong.
func (c *Client) Ping(ctx context.Context) error {
	cc := c.cur.Load()
	if cc == nil {
		return ErrNotConnected
	}
	var data [8]byte
	rand.Read(data[:])
	ch := make(chan struct{})
	c.pingMu.Lock()
	c.pings[data] = ch
	c.pingMu.Unlock()
	defer func() {
		c.pingMu.Lock()
		delete(c.pings, data)
		c.pingMu.Unlock()
	}()
	if err := cc.dc.SendPing(data); err != nil {
		c.closeForReconnect(cc)
		return err
	}
	t := time.NewTimer(pingTimeout)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errors.New("derphttp: ping timed out")
	}
}

// Recv returns the next message from the server, connecting first if
// needed. Packet data is valid only until the next call. Pongs answering
// Ping are consumed and not returned.
func (c *Client) Recv() (derp.ReceivedMessage, error) {
	m, _, err := c.RecvDetail()
	return m, err
}

// RecvDetail is like Recv and also returns the connection generation,
// which increases with every reconnect (the first connection is 1).
func (c *Client) RecvDetail() (derp.ReceivedMessage, int, error) {
	return c.recvDetail(context.Background(), nil)
}

// RecvInto is like Recv but stores a received packet in *p and returns p
// itself, so that a receive loop runs without allocating. Other messages
// are returned as by Recv.
func (c *Client) RecvInto(p *derp.ReceivedPacket) (derp.ReceivedMessage, error) {
	m, _, err := c.recvDetail(context.Background(), p)
	return m, err
}

// recvDetail is RecvDetail with a context for the connect. If ctx ends
// during the connect, the new connection is dropped at once. With a
// non-nil p, packets are received into it.
func (c *Client) recvDetail(ctx context.Context, p *derp.ReceivedPacket) (derp.ReceivedMessage, int, error) {
	cc, err := c.connect(ctx, "derphttp.Client.Recv")
	if err != nil {
		return nil, 0, err
	}
	if err := ctx.Err(); err != nil {
		c.closeForReconnect(cc)
		return nil, 0, err
	}
	for {
		cc.nc.SetReadDeadline(time.Now().Add(recvTimeout))
		var m derp.ReceivedMessage
		if p != nil {
			m, err = cc.dc.RecvInto(p)
		} else {
			m, err = cc.dc.Recv()
		}
		if err != nil {
			c.closeForReconnect(cc)
			if c.isClosed() {
				err = ErrClientClosed
			}
			return nil, 0, err
		}
		if pong, ok := m.(derp.PongMessage); ok && c.notePong(pong) {
			continue
		}
		if rm, ok := m.(derp.ServerRestartingMessage); ok {
			c.noteRestarting(cc, rm)
		}
		return m, cc.gen, nil
	}
}

func (c *Client) notePong(p derp.PongMessage) bool {
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	ch, ok := c.pings[p]
	if ok {
		delete(c.pings, p)
		close(ch)
	}
	return ok
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// closeForReconnect drops cc if it is still the current connection. A
// connection that has already been replaced is left alone, so that one
// goroutine's failure cannot tear down another's fresh connection.
func (c *Client) closeForReconnect(cc *conn) {
	c.mu.Lock()
	if c.conn != cc {
		c.mu.Unlock()
		return
	}
	c.conn = nil
	c.cur.Store(nil)
	c.tlsState = nil
	c.mu.Unlock()
	cc.dc.Close()
}

// Close cancels connects in progress, closes the connection and makes
// every later call fail with ErrClientClosed.
func (c *Client) Close() error {
	c.cancel()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClientClosed
	}
	c.closed = true
	cc := c.conn
	c.conn = nil
	c.cur.Store(nil)
	c.mu.Unlock()
	if cc != nil {
		cc.dc.Close()
	}
	return nil
}
