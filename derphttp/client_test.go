package derphttp_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"expvar"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/key"
)

// exchange sends one packet each way between a and b, which must both be
// connected and past ServerInfo.
func exchange(t *testing.T, a, b *derphttp.Client) {
	t.Helper()
	for _, dir := range []struct{ from, to *derphttp.Client }{{a, b}, {b, a}} {
		msg := []byte("hello from " + dir.from.SelfPublicKey().ShortString())
		if err := dir.from.Send(dir.to.SelfPublicKey(), msg); err != nil {
			t.Fatalf("Send: %v", err)
		}
		p := recvPacket(t, dir.to)
		if p.Source != dir.from.SelfPublicKey() || !bytes.Equal(p.Data, msg) {
			t.Fatalf("got packet %q from %v; want %q from %v", p.Data, p.Source, msg, dir.from.SelfPublicKey())
		}
	}
}

func TestClientServer(t *testing.T) {
	ca := newTestCA(t)
	tests := []struct {
		name      string
		o         serverOpts
		useCA     bool
		ws        bool
		fastStart bool
	}{
		{name: "http", o: serverOpts{}},
		{name: "tls13 meta cert", o: serverOpts{tls: ca, metaCert: true}, useCA: true, fastStart: true},
		{name: "tls13 no meta cert", o: serverOpts{tls: ca}, useCA: true},
		{name: "tls12 meta cert", o: serverOpts{tls: ca, metaCert: true, tls12: true}, useCA: true},
		{name: "websocket", o: serverOpts{websocket: true}, ws: true},
		{name: "websocket tls", o: serverOpts{websocket: true, tls: ca, metaCert: true}, useCA: true, ws: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, tt.o)
			var cca *testCA
			if tt.useCA {
				cca = ca
			}
			a, b := newClient(t, ts, cca), newClient(t, ts, cca)
			a.UseWebSocket, b.UseWebSocket = tt.ws, tt.ws
			if err := a.Connect(context.Background()); err != nil {
				t.Fatal(err)
			}
			waitServerInfo(t, a)
			waitServerInfo(t, b)
			// A fast-start Connect returns before the server has seen the
			// request; ServerInfo proves it has.
			if tt.ws {
				if got := ts.lastHeader().Get("Upgrade"); !strings.EqualFold(got, "websocket") {
					t.Errorf("Upgrade header = %q; want websocket", got)
				}
			} else {
				fs := ts.lastHeader().Get(derphttp.FastStartHeader) == "1"
				if fs != tt.fastStart {
					t.Errorf("client asked for fast start: %v; want %v", fs, tt.fastStart)
				}
				if got := ts.rec.saw101(); got == tt.fastStart {
					t.Errorf("server wrote 101: %v; want %v", got, !tt.fastStart)
				}
			}
			if a.ServerPublicKey() != ts.s.PublicKey() {
				t.Errorf("ServerPublicKey() = %v; want %v", a.ServerPublicKey(), ts.s.PublicKey())
			}
			_, isTLS := a.TLSConnectionState()
			if want := tt.o.tls != nil && !tt.ws; isTLS != want {
				t.Errorf("TLS state present: %v; want %v", isTLS, want)
			}
			la, err := a.LocalAddr()
			if tt.ws {
				if err == nil {
					t.Errorf("LocalAddr over WebSocket = %v; want error", la)
				}
			} else if err != nil || !la.Addr().IsLoopback() {
				t.Errorf("LocalAddr() = %v, %v; want loopback", la, err)
			}
			exchange(t, a, b)
		})
	}
}

func TestUpgradeRefused(t *testing.T) {
	ts := newTestServer(t, serverOpts{})
	c, err := derphttp.NewClient(key.NewNode(), "http://"+ts.addr+"/derp/probe", t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Connect(context.Background())
	if err == nil || !strings.Contains(err.Error(), "GET failed: 200 OK") {
		t.Fatalf("Connect to a non-DERP path = %v; want GET failed", err)
	}
}

func TestNewClientURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://derp.example.net/derp", true},
		{"http://derp.example.net/derp", true},
		{"derp://derp.example.net:1234/derp", true},
		{"derp://derp.example.net/derp", false},
		{"http://[::1/derp", false},
	}
	for _, tt := range tests {
		c, err := derphttp.NewClient(key.NewNode(), tt.url, nil)
		if (err == nil) != tt.ok {
			t.Errorf("NewClient(%q) error = %v; want ok=%v", tt.url, err, tt.ok)
		}
		if c != nil {
			if !strings.Contains(c.String(), "derp.example.net") {
				t.Errorf("String() = %q", c.String())
			}
			c.Close()
		}
	}
}

func TestNotConnected(t *testing.T) {
	c, err := derphttp.NewClient(key.NewNode(), "http://127.0.0.1:1/derp", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.LocalAddr(); !errors.Is(err, derphttp.ErrNotConnected) {
		t.Errorf("LocalAddr() = %v; want ErrNotConnected", err)
	}
	if err := c.SendPing([8]byte{}); !errors.Is(err, derphttp.ErrNotConnected) {
		t.Errorf("SendPing() = %v; want ErrNotConnected", err)
	}
	if err := c.SendPong([8]byte{}); !errors.Is(err, derphttp.ErrNotConnected) {
		t.Errorf("SendPong() = %v; want ErrNotConnected", err)
	}
	if err := c.Ping(context.Background()); !errors.Is(err, derphttp.ErrNotConnected) {
		t.Errorf("Ping() = %v; want ErrNotConnected", err)
	}
	if err := c.Send(key.NewNode().Public(), []byte("x")); err == nil || !strings.Contains(err.Error(), "derphttp.Client.Send connect to http://127.0.0.1:1/derp") {
		t.Errorf("Send to closed port = %v", err)
	}
	c.NotePreferred(true) // remembered, nothing sent
	if err := c.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if err := c.Close(); !errors.Is(err, derphttp.ErrClientClosed) {
		t.Errorf("second Close() = %v; want ErrClientClosed", err)
	}
	for name, f := range map[string]func() error{
		"Connect":       func() error { return c.Connect(context.Background()) },
		"Send":          func() error { return c.Send(key.NodePublic{}, nil) },
		"ForwardPacket": func() error { return c.ForwardPacket(key.NodePublic{}, key.NodePublic{}, nil) },
		"ClosePeer":     func() error { return c.ClosePeer(key.NodePublic{}) },
		"Recv":          func() error { _, err := c.Recv(); return err },
	} {
		if err := f(); !errors.Is(err, derphttp.ErrClientClosed) {
			t.Errorf("%s after Close = %v; want ErrClientClosed", name, err)
		}
	}
}

func TestPingAndPreferred(t *testing.T) {
	ts := newTestServer(t, serverOpts{})
	c := newClient(t, ts, nil)
	c.NotePreferred(true)
	c.SetCanAckPings(true)
	waitServerInfo(t, c)
	done := make(chan error, 1)
	go func() {
		// Ping's pong is consumed inside Recv; the one for SendPing is
		// returned. Then Recv blocks until the client is closed.
		for range 10 {
			m, err := c.Recv()
			if err != nil {
				done <- err
				return
			}
			if _, ok := m.(derp.PongMessage); !ok {
				done <- errors.New("unexpected message")
				return
			}
		}
		done <- errors.New("too many messages")
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	c.NotePreferred(false)
	c.NotePreferred(true)
	if err := c.SendPing([8]byte{1}); err != nil {
		t.Fatalf("SendPing: %v", err)
	}
	c.Close()
	if err := <-done; !errors.Is(err, derphttp.ErrClientClosed) {
		t.Fatalf("Recv after Close = %v; want ErrClientClosed", err)
	}
}

func TestReconnectAfterServerRestart(t *testing.T) {
	ts := newTestServer(t, serverOpts{})
	addr := ts.addr
	priv := key.NewNode()
	c, err := derphttp.NewClient(priv, ts.url, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peer := newClient(t, ts, nil)
	waitServerInfo(t, c)
	waitServerInfo(t, peer)
	exchange(t, c, peer)
	gen1 := c.ConnGen()

	ts.close()
	if _, err := c.Recv(); err == nil {
		t.Fatal("Recv after server shutdown succeeded")
	}

	ts2 := newTestServer(t, serverOpts{addr: addr, priv: ts.s.PrivateKey()})
	peer2 := newClient(t, ts2, nil)
	waitServerInfo(t, peer2)
	m, gen2, err := c.RecvDetail() // reconnects
	if err != nil {
		t.Fatalf("RecvDetail after restart: %v", err)
	}
	if _, ok := m.(derp.ServerInfoMessage); !ok {
		t.Fatalf("first message after reconnect = %T; want ServerInfoMessage", m)
	}
	if gen2 != gen1+1 {
		t.Errorf("generation after reconnect = %d; want %d", gen2, gen1+1)
	}
	exchange(t, c, peer2)
}

func TestCloseCancelsConnect(t *testing.T) {
	// A listener that accepts but never answers keeps Connect waiting for
	// the 101 until Close cancels it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err == nil {
			accepted <- nc
		}
	}()
	c, err := derphttp.NewClient(key.NewNode(), "http://"+ln.Addr().String()+"/derp", nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Connect(context.Background()) }()
	nc := <-accepted
	defer nc.Close()
	c.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Connect succeeded after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not cancel Connect")
	}
}

func TestMetaCertTLS12Ignored(t *testing.T) {
	// Guard against a misconfigured test: the TLS 1.2 server must still
	// present the meta certificate, which the client must ignore.
	ca := newTestCA(t)
	ts := newTestServer(t, serverOpts{tls: ca, metaCert: true, tls12: true})
	conn, err := tls.Dial("tcp", ts.addr, &tls.Config{RootCAs: ca.pool, ServerName: "derp.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := conn.ConnectionState()
	if cs.Version != tls.VersionTLS12 {
		t.Fatalf("negotiated %x; want TLS 1.2", cs.Version)
	}
	k, v, ok := derphttp.ParseMetaCert(cs.PeerCertificates)
	if !ok || k != ts.s.PublicKey() || v != derp.ProtocolVersion {
		t.Fatalf("ParseMetaCert = %v, %d, %v; want server key, version 2", k, v, ok)
	}
}

func TestURLDialerAndClosePeer(t *testing.T) {
	const meshKey = "mesh"
	ts := newTestServer(t, serverOpts{meshKey: meshKey})
	m, err := derphttp.NewClient(ts.s.PrivateKey(), "http://derp.invalid:80/derp", t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.MeshKey = meshKey
	m.BaseContext = context.Background
	dials := 0
	m.SetURLDialer(func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials++
		if addr != "derp.invalid:80" {
			t.Errorf("dialer asked for %s %s", network, addr)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, ts.addr)
	})
	victim := newClient(t, ts, nil)
	waitServerInfo(t, victim)
	if err := m.ClosePeer(victim.SelfPublicKey()); err != nil {
		t.Fatal(err)
	}
	if dials != 1 {
		t.Errorf("dialer called %d times; want 1", dials)
	}
	for range 100 {
		if _, err := victim.Recv(); err != nil {
			break
		}
	}
	// The victim reconnects on its next use.
	waitServerInfo(t, victim)
	if victim.ConnGen() != 2 {
		t.Errorf("victim generation %d; want 2", victim.ConnGen())
	}

	// A mesh peer forwards on behalf of another key.
	src := key.NewNode().Public()
	if err := m.ForwardPacket(src, victim.SelfPublicKey(), []byte("fwd")); err != nil {
		t.Fatal(err)
	}
	p := recvPacket(t, victim)
	if p.Source != src || string(p.Data) != "fwd" {
		t.Errorf("forwarded packet %q from %v", p.Data, p.Source)
	}
}

func TestRecvInto(t *testing.T) {
	ts := newTestServer(t, serverOpts{})
	a, b := newClient(t, ts, nil), newClient(t, ts, nil)
	waitServerInfo(t, a)
	waitServerInfo(t, b)
	if err := a.Send(b.SelfPublicKey(), []byte("into")); err != nil {
		t.Fatal(err)
	}
	var p derp.ReceivedPacket
	m, err := b.RecvInto(&p)
	if err != nil {
		t.Fatal(err)
	}
	if m != &p || string(p.Data) != "into" || p.Source != a.SelfPublicKey() {
		t.Fatalf("RecvInto = %v (%q)", m, p.Data)
	}
}

// homeConns reads the server's count of connections marked preferred.
func homeConns(t *testing.T, s *derp.Server) string {
	t.Helper()
	return s.ExpVar().(*expvar.Map).Get("gauge_current_home_connections").String()
}

// syncWithServer waits until the server has processed everything c sent before.
func syncWithServer(t *testing.T, c *derphttp.Client) {
	t.Helper()
	if err := c.SendPing([8]byte{9}); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		m, err := c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := m.(derp.PongMessage); ok {
			return
		}
	}
	t.Fatal("no pong")
}

func TestPreferredSurvivesReconnect(t *testing.T) {
	ts := newTestServer(t, serverOpts{})
	c := newClient(t, ts, nil)
	c.NotePreferred(true)
	waitServerInfo(t, c)
	syncWithServer(t, c)
	if got := homeConns(t, ts.s); got != "1" {
		t.Fatalf("home connections = %s; want 1", got)
	}
	if !c.BreakConn() {
		t.Fatal("not connected")
	}
	if _, err := c.Recv(); err == nil {
		t.Fatal("Recv on broken connection succeeded")
	}
	waitServerInfo(t, c) // reconnects
	syncWithServer(t, c)
	// Once the server has dropped the old connection, the new one must
	// count as preferred without having been told again.
	for range 100 {
		if ts.s.ExpVar().(*expvar.Map).Get("gauge_current_connections").String() == "1" {
			break
		}
		syncWithServer(t, c)
	}
	if got := homeConns(t, ts.s); got != "1" {
		t.Fatalf("home connections after reconnect = %s; want 1", got)
	}
	c.NotePreferred(false)
	syncWithServer(t, c)
	if got := homeConns(t, ts.s); got != "0" {
		t.Fatalf("home connections after NotePreferred(false) = %s; want 0", got)
	}
}
