package derphttp_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/derpmap"
	"github.com/openderp/openderp/key"
)

// startShutdown begins a graceful shutdown of ts. The returned function
// ends the grace period, waits for the shutdown and frees ts's address.
func startShutdown(t *testing.T, ts *testServer, reconnectIn, tryFor time.Duration) (end func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ts.s.Shutdown(ctx, reconnectIn, tryFor) }()
	return func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		ts.hs.Close()
	}
}

// recvRestarting receives until a Restarting frame, which it returns.
func recvRestarting(t *testing.T, c *derphttp.Client) derp.ServerRestartingMessage {
	t.Helper()
	for range 100 {
		m, err := c.Recv()
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		if r, ok := m.(derp.ServerRestartingMessage); ok {
			return r
		}
	}
	t.Fatal("no Restarting frame in 100 messages")
	return derp.ServerRestartingMessage{}
}

// recvUntilEnd receives until the connection fails.
func recvUntilEnd(t *testing.T, c *derphttp.Client) {
	t.Helper()
	for range 100 {
		if _, err := c.Recv(); err != nil {
			return
		}
	}
	t.Fatal("connection did not end")
}

// countingDialer dials TCP and reports each attempt's error on a channel.
type countingDialer struct {
	attempts atomic.Int32
	results  chan error
}

func (d *countingDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.attempts.Add(1)
	var nd net.Dialer
	nc, err := nd.DialContext(ctx, network, addr)
	select {
	case d.results <- err:
	default:
	}
	return nc, err
}

func TestClientWaitsAdvisedDelay(t *testing.T) {
	ts := newTestServer(t, serverOpts{})
	c := newClient(t, ts, nil)
	waitServerInfo(t, c)

	const delay = 400 * time.Millisecond
	start := time.Now()
	end := startShutdown(t, ts, delay, 5*time.Second)
	if got := recvRestarting(t, c); got.ReconnectIn != delay || got.TryFor != 5*time.Second {
		t.Fatalf("Restarting = %+v", got)
	}
	end()
	recvUntilEnd(t, c)
	ts2 := newTestServer(t, serverOpts{addr: ts.addr})

	waitServerInfo(t, c) // reconnects
	if el := time.Since(start); el < delay {
		t.Errorf("reconnected %v after the frame, before the advised %v", el, delay)
	}
	if c.ServerPublicKey() != ts2.s.PublicKey() {
		t.Error("not connected to the restarted server")
	}
}

func TestClientRetriesDuringTryFor(t *testing.T) {
	ts := newTestServer(t, serverOpts{})
	c := newClient(t, ts, nil)
	d := &countingDialer{results: make(chan error, 1)}
	c.SetURLDialer(d.dial)
	waitServerInfo(t, c)
	if err := <-d.results; err != nil { // the first connection's dial
		t.Fatal(err)
	}

	end := startShutdown(t, ts, 0, 10*time.Second)
	recvRestarting(t, c)
	end()
	recvUntilEnd(t, c)

	recvErr := make(chan error, 1)
	go func() {
		m, err := c.Recv()
		if err == nil {
			if _, ok := m.(derp.ServerInfoMessage); !ok {
				err = errors.New("first message is not ServerInfo")
			}
		}
		recvErr <- err
	}()
	// The first attempt finds nobody; the server comes back after it.
	if err := <-d.results; err == nil {
		t.Fatal("first dial after the restart succeeded with no server")
	}
	ts2 := newTestServer(t, serverOpts{addr: ts.addr})
	if err := <-recvErr; err != nil {
		t.Fatalf("Recv after restart: %v", err)
	}
	if n := d.attempts.Load(); n < 3 {
		t.Errorf("%d dials, want the first connection, a failed retry and a good one", n)
	}
	if c.ServerPublicKey() != ts2.s.PublicKey() {
		t.Error("not connected to the restarted server")
	}
}

func TestClientGivesUpAfterTryFor(t *testing.T) {
	ts := newTestServer(t, serverOpts{})
	c := newClient(t, ts, nil)
	d := &countingDialer{results: make(chan error, 100)}
	c.SetURLDialer(d.dial)
	waitServerInfo(t, c)

	const tryFor = 600 * time.Millisecond
	end := startShutdown(t, ts, 0, tryFor)
	recvRestarting(t, c)
	end()
	recvUntilEnd(t, c)
	start := time.Now()
	if _, err := c.Recv(); err == nil {
		t.Fatal("Recv succeeded with no server")
	}
	if el := time.Since(start); el < tryFor {
		t.Errorf("gave up after %v, before the advised %v", el, tryFor)
	}
	if n := d.attempts.Load(); n < 3 {
		t.Errorf("%d dials, want the first connection and retries", n)
	}
	// The next call is an ordinary connect: one attempt.
	before := d.attempts.Load()
	if _, err := c.Recv(); err == nil {
		t.Fatal("Recv succeeded with no server")
	}
	if n := d.attempts.Load() - before; n != 1 {
		t.Errorf("%d dials after giving up, want 1", n)
	}
}

// TestRegionClientKeepsNode checks that a region client whose node
// restarts waits for that node, although another node of the region now
// comes first, and that it keeps its home preference.
func TestRegionClientKeepsNode(t *testing.T) {
	ca := newTestCA(t)
	first := deadPort(t)
	ts := newTestServer(t, serverOpts{tls: ca, metaCert: true})
	region := &derpmap.Region{
		RegionID:   900,
		RegionCode: "test",
		Nodes: []*derpmap.Node{
			{Name: "900a", RegionID: 900, HostName: "derp.test", IPv4: "127.0.0.1", IPv6: "none", DERPPort: first},
			{Name: "900b", RegionID: 900, HostName: "derp.test", IPv4: "127.0.0.1", IPv6: "none", DERPPort: port(t, ts)},
		},
	}
	c := derphttp.NewRegionClient(key.NewNode(), t.Logf, func() *derpmap.Region { return region })
	defer c.Close()
	c.TLSConfig = &tls.Config{RootCAs: ca.pool}
	c.NotePreferred(true)
	waitServerInfo(t, c) // on 900b: 900a is down

	// 900a comes up, 900b restarts.
	other := newTestServer(t, serverOpts{tls: ca, metaCert: true, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(first))})
	end := startShutdown(t, ts, 0, 10*time.Second)
	recvRestarting(t, c)
	end()
	recvUntilEnd(t, c)
	ts2 := newTestServer(t, serverOpts{tls: ca, metaCert: true, addr: ts.addr})

	waitServerInfo(t, c)
	switch c.ServerPublicKey() {
	case ts2.s.PublicKey():
	case other.s.PublicKey():
		t.Fatal("reconnected to the region's first node instead of waiting for the restarting one")
	default:
		t.Fatal("connected to an unknown server")
	}
	// The NotePreferred frame precedes the ping on the connection.
	if err := c.SendPing([8]byte{7}); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := m.(derp.PongMessage); ok {
			break
		}
	}
	snaps := ts2.s.ConnSnapshots()
	if len(snaps) != 1 || !snaps[0].Home {
		t.Errorf("restarted server's connections: %+v, want one home connection", snaps)
	}
}

// TestMeshPeerFollowsRestart checks that a mesh watch loop reconnects to
// a restarted peer as the Restarting frame advises, not after its usual
// pause, here made too long for the test.
func TestMeshPeerFollowsRestart(t *testing.T) {
	const meshKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	a := newTestServer(t, serverOpts{meshKey: meshKey})
	m, err := derphttp.NewClient(key.NewNode(), a.url, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.MeshKey = meshKey
	m.SetWatchRetry(time.Hour)
	events := make(chan meshEvent, 100)
	ctx, cancel := context.WithCancel(context.Background())
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		m.RunWatchConnectionLoop(ctx, key.NodePublic{}, t.Logf,
			func(p derp.PeerPresentMessage) { events <- meshEvent{add: true, key: p.Key} },
			func(p derp.PeerGoneMessage) { events <- meshEvent{key: p.Peer, reason: p.Reason} })
	}()
	defer func() { cancel(); <-loopDone }()

	c1 := newClient(t, a, nil)
	waitServerInfo(t, c1)
	if ev := waitEvent(t, events, c1.SelfPublicKey()); !ev.add {
		t.Fatalf("event %+v, want add", ev)
	}
	end := startShutdown(t, a, 100*time.Millisecond, 10*time.Second)
	// The loop sees the frame before the connection ends, so the
	// connection has gone once c1 has seen its own frame and end.
	recvRestarting(t, c1)
	end()
	if ev := waitEvent(t, events, c1.SelfPublicKey()); ev.add || ev.reason != derp.PeerGoneReasonMeshConnBroke {
		t.Fatalf("event %+v, want mesh-broke removal", ev)
	}

	a2 := newTestServer(t, serverOpts{meshKey: meshKey, addr: a.addr})
	c2 := newClient(t, a2, nil)
	waitServerInfo(t, c2)
	if ev := waitEvent(t, events, c2.SelfPublicKey()); !ev.add {
		t.Fatalf("event %+v, want add after the restart", ev)
	}
}
