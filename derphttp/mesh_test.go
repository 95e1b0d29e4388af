package derphttp_test

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/key"
)

type meshEvent struct {
	add    bool
	key    key.NodePublic
	reason derp.PeerGoneReasonType
}

// waitEvent returns the next event about k, skipping others.
func waitEvent(t *testing.T, events <-chan meshEvent, k key.NodePublic) meshEvent {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case ev := <-events:
			if ev.key == k {
				return ev
			}
		case <-timeout.C:
			t.Fatalf("no mesh event for %v", k.ShortString())
		}
	}
}

func TestMesh(t *testing.T) {
	const meshKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	a := newTestServer(t, serverOpts{meshKey: meshKey})
	b := newTestServer(t, serverOpts{meshKey: meshKey})

	// b follows a's clients, as derper does for each mesh peer.
	m, err := derphttp.NewClient(b.s.PrivateKey(), a.url, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	m.MeshKey = meshKey
	m.SetWatchRetry(10 * time.Millisecond)
	var connects atomic.Int32
	m.OnWatchConnect = func() { connects.Add(1) }
	events := make(chan meshEvent, 100)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.RunWatchConnectionLoop(ctx, b.s.PublicKey(), t.Logf,
			func(p derp.PeerPresentMessage) {
				b.s.AddPacketForwarder(p.Key, m)
				events <- meshEvent{add: true, key: p.Key}
			},
			func(g derp.PeerGoneMessage) {
				b.s.RemovePacketForwarder(g.Peer, m)
				events <- meshEvent{key: g.Peer, reason: g.Reason}
			})
	}()
	defer func() {
		cancel()
		wg.Wait()
		m.Close()
	}()

	x := newClient(t, a, nil)
	y := newClient(t, b, nil)
	waitServerInfo(t, x)
	waitServerInfo(t, y)
	if ev := waitEvent(t, events, x.SelfPublicKey()); !ev.add {
		t.Fatalf("first event for x = %+v; want add", ev)
	}

	send := func() {
		t.Helper()
		msg := []byte("across the mesh")
		if err := y.Send(x.SelfPublicKey(), msg); err != nil {
			t.Fatal(err)
		}
		p := recvPacket(t, x)
		if p.Source != y.SelfPublicKey() || !bytes.Equal(p.Data, msg) {
			t.Fatalf("x got %q from %v", p.Data, p.Source)
		}
	}
	send()

	// Cut the mesh link: x is reported gone with MeshConnBroke, then
	// present again once the loop has reconnected.
	if !m.BreakConn() {
		t.Fatal("mesh client not connected")
	}
	ev := waitEvent(t, events, x.SelfPublicKey())
	if ev.add || ev.reason != derp.PeerGoneReasonMeshConnBroke {
		t.Fatalf("event after cut = %+v; want gone, MeshConnBroke", ev)
	}
	if ev := waitEvent(t, events, x.SelfPublicKey()); !ev.add {
		t.Fatalf("event after reconnect = %+v; want add", ev)
	}
	if m.ConnGen() < 2 {
		t.Errorf("generation %d after reconnect; want >= 2", m.ConnGen())
	}
	if n := connects.Load(); n < 2 {
		t.Errorf("OnWatchConnect called %d times after a reconnect; want >= 2", n)
	}
	send()

	// x leaving a is reported as an ordinary disconnect.
	x.Close()
	if ev := waitEvent(t, events, x.SelfPublicKey()); ev.add || ev.reason != derp.PeerGoneReasonDisconnected {
		t.Fatalf("event after x left = %+v; want gone, Disconnected", ev)
	}
}

func TestMeshSelfConnect(t *testing.T) {
	const meshKey = "k"
	a := newTestServer(t, serverOpts{meshKey: meshKey})
	m, err := derphttp.NewClient(a.s.PrivateKey(), a.url, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.MeshKey = meshKey
	var connects atomic.Int32
	m.OnWatchConnect = func() { connects.Add(1) }
	done := make(chan struct{})
	go func() {
		m.RunWatchConnectionLoop(context.Background(), a.s.PublicKey(), t.Logf,
			func(derp.PeerPresentMessage) {}, func(derp.PeerGoneMessage) {})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("watch loop did not stop on self-connect")
	}
	if n := connects.Load(); n != 0 {
		t.Errorf("OnWatchConnect called %d times for a self-connect", n)
	}
}

func TestMeshConnectRetry(t *testing.T) {
	// With nothing listening, the loop keeps retrying until ctx ends.
	m, err := derphttp.NewClient(key.NewNode(), "http://127.0.0.1:1/derp", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.SetWatchRetry(time.Millisecond)
	var mu sync.Mutex
	fails := 0
	ctx, cancel := context.WithCancel(context.Background())
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fails++
		if fails == 3 {
			cancel()
		}
	}
	m.RunWatchConnectionLoop(ctx, key.NodePublic{}, logf, func(derp.PeerPresentMessage) {}, func(derp.PeerGoneMessage) {})
	if fails < 3 {
		t.Fatalf("loop returned after %d failures", fails)
	}
}
