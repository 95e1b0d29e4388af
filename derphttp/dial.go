package derphttp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"

	"github.com/coder/websocket"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derpmap"
	"github.com/openderp/openderp/key"
)

// connect returns the current connection, dialing one if there is none.
// It holds c.mu throughout, so concurrent callers wait for one dial and
// share its result.
func (c *Client) connect(ctx context.Context, caller string) (*conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClientClosed
	}
	if c.conn != nil {
		return c.conn, nil
	}

	if c.BaseContext != nil {
		var cancel context.CancelFunc
		ctx, cancel = mergeCancel(ctx, c.BaseContext())
		defer cancel()
	}
	ctx, cancel := mergeCancel(ctx, c.ctx) // Close cancels the dial
	defer cancel()

	cc, st, err := c.dialLocked(ctx) // see restart.go
	if err != nil {
		return nil, fmt.Errorf("%s connect to %s: %w", caller, c.target(), err)
	}
	c.connGen++
	cc.gen = c.connGen
	c.conn = cc
	c.serverPub = cc.dc.ServerPublicKey()
	c.tlsState = st
	c.cur.Store(cc)
	return cc, nil
}

// mergeCancel returns a context that is ctx, also cancelled when other is.
func mergeCancel(ctx, other context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(other, func() { cancel(context.Cause(other)) })
	return ctx, func() { stop(); cancel(context.Canceled) }
}

// dialDERP does everything from DNS to the DERP handshake. On success the
// returned conn owns the network connection; on failure it is closed. A
// region client dials only the node named only, unless it is empty.
func (c *Client) dialDERP(ctx context.Context, only string) (*conn, *tls.ConnectionState, error) {
	var region *derpmap.Region
	if c.getRegion != nil {
		region = c.getRegion()
		if region == nil {
			return nil, nil, errors.New("DERP region not available")
		}
	}
	if c.UseWebSocket {
		return c.dialWebSocket(ctx, region)
	}

	var (
		tcp  net.Conn
		node *derpmap.Node
		err  error
	)
	if region != nil {
		tcp, node, err = c.dialRegion(ctx, region, only)
	} else {
		tcp, err = c.dialURL(ctx)
	}
	if err != nil {
		return nil, nil, err
	}
	// Until setup completes, the connect budget bounds every blocking
	// step by closing the socket.
	stop := context.AfterFunc(ctx, func() { tcp.Close() })
	ok := false
	defer func() {
		// If stop reports false, the budget ran out and tcp is closed.
		if stopped := stop(); stopped && !ok {
			go tcp.Close() // may block on a TLS close alert; don't wait
		}
	}()

	nc := tcp
	var st *tls.ConnectionState
	var serverPub key.NodePublic
	if c.useHTTPS() {
		tc := tls.Client(tcp, c.tlsConfig(node))
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, nil, fmt.Errorf("TLS handshake: %w", err)
		}
		cs := tc.ConnectionState()
		st = &cs
		serverPub, _ = metaCertFromState(st)
		nc = tc
	}

	brw := bufio.NewReadWriter(bufio.NewReaderSize(nc, 4096), bufio.NewWriterSize(nc, 4096))
	if err := c.upgrade(brw, region, node, !serverPub.IsZero()); err != nil {
		return nil, nil, err
	}
	opts := []derp.ClientOpt{
		derp.MeshKey(c.MeshKey),
		derp.IsProber(c.IsProber),
		derp.AppName(c.AppName),
		derp.CanAckPings(c.canAckPings.Load()),
	}
	if !serverPub.IsZero() {
		opts = append(opts, derp.ServerPublicKey(serverPub))
	}
	dc, err := derp.NewClient(c.priv, nc, brw, c.logf, opts...)
	if err != nil {
		return nil, nil, err
	}
	if err := c.afterHandshake(dc); err != nil {
		return nil, nil, err
	}
	cc := &conn{dc: dc, nc: nc}
	if node != nil {
		cc.node = node.Name
	}
	if ta, isTCP := tcp.LocalAddr().(*net.TCPAddr); isTCP {
		cc.localAddr = ta.AddrPort()
	}
	ok = true
	return cc, st, nil
}

// afterHandshake sends what every new connection must: the stored home
// preference and the watch request.
func (c *Client) afterHandshake(dc *derp.Client) error {
	if c.preferred {
		if err := dc.NotePreferred(true); err != nil {
			return err
		}
	}
	if c.WatchConnectionChanges {
		if err := dc.WatchConnectionChanges(); err != nil {
			return err
		}
	}
	return nil
}

func (c *Client) useHTTPS() bool {
	if c.forceHTTPOnly {
		return false
	}
	if c.url != nil {
		return c.url.Scheme != "http"
	}
	return true
}

// upgrade writes the HTTP upgrade request and, unless fastStart, reads
// the reply, which must be 101. Bytes after the reply stay in brw for the
// DERP client.
func (c *Client) upgrade(brw *bufio.ReadWriter, region *derpmap.Region, node *derpmap.Node, fastStart bool) error {
	req, err := http.NewRequest(http.MethodGet, c.requestURL(node), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Upgrade", upgradeProto)
	req.Header.Set("Connection", "Upgrade")
	if fastStart {
		req.Header.Set(FastStartHeader, "1")
	}
	if region != nil && len(region.Nodes) > 0 && node != nil && node != region.Nodes[0] {
		// For the server's statistics: which node we would have liked.
		req.Header.Set(IdealNodeHeader, region.Nodes[0].Name)
	}
	if err := req.Write(brw); err != nil {
		return fmt.Errorf("writing upgrade request: %w", err)
	}
	if fastStart {
		// The request goes out with the client's handshake, in one flush.
		return nil
	}
	if err := brw.Flush(); err != nil {
		return fmt.Errorf("writing upgrade request: %w", err)
	}
	res, err := http.ReadResponse(brw.Reader, req)
	if err != nil {
		return fmt.Errorf("reading upgrade response: %w", err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		res.Body.Close()
		return fmt.Errorf("GET failed: %v: %s", res.Status, body)
	}
	return nil
}

func (c *Client) requestURL(node *derpmap.Node) string {
	if c.url != nil {
		return c.url.String()
	}
	scheme := "https"
	// The dial port stays DERPPort even then.
	// See docs/compat.md#derp-http-port.
	if c.forceHTTPOnly {
		scheme = "http"
	}
	return scheme + "://" + node.HostName + "/derp"
}

// tlsConfig returns the TLS configuration for a URL target (node nil) or
// a region node.
func (c *Client) tlsConfig(node *derpmap.Node) *tls.Config {
	var cfg *tls.Config
	if c.TLSConfig != nil {
		cfg = c.TLSConfig.Clone()
	} else {
		cfg = new(tls.Config)
	}
	if node != nil {
		cfg.ServerName = node.HostName
	} else {
		cfg.ServerName = c.url.Hostname()
	}
	if cfg.KeyLogWriter == nil {
		if w := keyLogWriter(c.printf); w != nil {
			cfg.KeyLogWriter = w
		}
	}
	if node != nil && node.InsecureForTests {
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = nil
		return cfg
	}
	if cfg.InsecureSkipVerify {
		return cfg // the caller's choice
	}
	if node != nil && strings.HasPrefix(node.CertName, derpmap.CertPinPrefix) {
		// A pinned certificate replaces chain verification. No SNI is
		// sent to an IP literal, and then none is checked.
		pin, sni := node.CertName, cfg.ServerName
		if _, err := netip.ParseAddr(sni); err == nil {
			sni = ""
		}
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			return VerifyCertPin(cs.PeerCertificates, pin, sni)
		}
		return cfg
	}
	certName := cfg.ServerName
	if node != nil && node.CertName != "" {
		// SNI stays HostName; the certificate must carry CertName.
		certName = node.CertName
	}
	roots := cfg.RootCAs
	cfg.InsecureSkipVerify = true // verifyServerCert does it instead
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		return verifyServerCert(cs.PeerCertificates, certName, roots)
	}
	return cfg
}

// dialURL dials a URL client's server.
func (c *Client) dialURL(ctx context.Context) (net.Conn, error) {
	host := c.url.Hostname()
	port := c.url.Port()
	if port == "" {
		port = "443"
		if c.url.Scheme == "http" {
			port = "80"
		}
	}
	addr := net.JoinHostPort(host, port)
	if c.dialer != nil {
		return c.dialer(ctx, "tcp", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

func (c *Client) dialWebSocket(ctx context.Context, region *derpmap.Region) (*conn, *tls.ConnectionState, error) {
	u := c.requestURLWebSocket(region)
	var tcfg *tls.Config
	if region == nil {
		tcfg = c.tlsConfig(nil)
	} else if len(region.Nodes) > 0 {
		tcfg = c.tlsConfig(region.Nodes[0])
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tcfg, Proxy: http.ProxyFromEnvironment}}
	defer hc.CloseIdleConnections()
	ws, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{
		HTTPClient:   hc,
		Subprotocols: []string{"derp"},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("websocket dial: %w", err)
	}
	// The net.Conn must outlive ctx, which ends with connect.
	nc := websocket.NetConn(c.ctx, ws, websocket.MessageBinary)
	brw := bufio.NewReadWriter(bufio.NewReaderSize(nc, 4096), bufio.NewWriterSize(nc, 4096))
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	dc, err := derp.NewClient(c.priv, nc, brw, c.logf,
		derp.MeshKey(c.MeshKey), derp.IsProber(c.IsProber), derp.AppName(c.AppName), derp.CanAckPings(c.canAckPings.Load()))
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	// Like the reference, a WebSocket client never asks to watch.
	if c.preferred {
		if err := dc.NotePreferred(true); err != nil {
			nc.Close()
			return nil, nil, err
		}
	}
	return &conn{dc: dc, nc: nc}, nil, nil
}

func (c *Client) requestURLWebSocket(region *derpmap.Region) string {
	if region == nil {
		return c.url.String()
	}
	if len(region.Nodes) == 0 {
		return "https://invalid.invalid/derp"
	}
	return "https://" + region.Nodes[0].HostName + "/derp"
}

// keyLog is the SSLKEYLOGFILE, opened once per process and shared by every
// client and reconnect: opening it per dial leaked a descriptor each time.
var keyLog struct {
	once sync.Once
	w    io.Writer // nil if unset or unopenable
}

// keyLogWriter returns the shared SSLKEYLOGFILE writer, or nil. The first
// call opens the file and warns through logf.
func keyLogWriter(logf func(string, ...any)) io.Writer {
	keyLog.once.Do(func() {
		f := os.Getenv("SSLKEYLOGFILE")
		if f == "" {
			return
		}
		w, err := os.OpenFile(f, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			logf("derphttp: SSLKEYLOGFILE %s: %v", f, err)
			return
		}
		logf("derphttp: WARNING: writing TLS secrets to SSLKEYLOGFILE %s", f)
		keyLog.w = w
	})
	return keyLog.w
}
