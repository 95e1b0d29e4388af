package derp

import (
	"testing"
	"time"

	"github.com/openderp/openderp/key"
)

func TestDuplicateClients(t *testing.T) {
	ts := newTestServer(t)
	s := ts.s
	priv := key.NewNode()
	sender := ts.dial(t)
	c1 := ts.dialKey(t, priv)
	c2 := ts.dialKey(t, priv)
	if s.metrics.dupClientKeys.Value() != 1 || s.metrics.dupClientConns.Value() != 2 || s.metrics.dupClientConnsTotal.Value() != 1 {
		t.Fatalf("dup metrics: keys %d conns %d total %d", s.metrics.dupClientKeys.Value(), s.metrics.dupClientConns.Value(), s.metrics.dupClientConnsTotal.Value())
	}
	// The newest connection receives.
	sender.Send(priv.Public(), []byte("to newest"))
	if got := recvPacket(t, c2); string(got.Data) != "to newest" {
		t.Fatalf("c2 got %q", got.Data)
	}
	// Whoever speaks last receives: c1 pings.
	c1.SendPing([8]byte{1})
	if m := recvMsg(t, c1); m != PongMessage([8]byte{1}) {
		t.Fatalf("got %#v", m)
	}
	sender.Send(priv.Public(), []byte("to c1"))
	if got := recvPacket(t, c1); string(got.Data) != "to c1" {
		t.Fatalf("c1 got %q", got.Data)
	}
	// A third connection, then the active one leaves: the most recent
	// remaining speaker takes over, and nobody hears PeerGone.
	c3 := ts.dialKey(t, priv)
	if s.metrics.dupClientConns.Value() != 3 {
		t.Fatal("third dup not counted")
	}
	c3.Close()
	waitFor(t, "c3 unregistered", func() bool { return s.metrics.dupClientConns.Value() == 2 })
	sender.Send(priv.Public(), []byte("after c3"))
	if got := recvPacket(t, c1); string(got.Data) != "after c3" {
		t.Fatalf("c1 got %q", got.Data)
	}
	// The consistency check compares connections with connections.
	if err := s.ConsistencyCheck(); err != nil {
		t.Fatalf("consistency with dups: %v", err)
	}
	c1.Close()
	waitFor(t, "dup set dissolved", func() bool { return s.metrics.dupClientKeys.Value() == 0 && s.metrics.dupClientConns.Value() == 0 })
	sender.Send(priv.Public(), []byte("to survivor"))
	if got := recvPacket(t, c2); string(got.Data) != "to survivor" {
		t.Fatalf("c2 got %q", got.Data)
	}
	// No PeerGone reached the sender while a connection of priv remained.
	sender.SendPing([8]byte{2})
	if m := recvMsg(t, sender); m != PongMessage([8]byte{2}) {
		t.Fatalf("sender got %#v, want only its pong", m)
	}
}

func TestDupNoActiveDrops(t *testing.T) {
	// With no active connection in a dup set, packets are dropped as
	// dup_client. The default policy never gets there, so set it up by hand.
	ts := newTestServer(t)
	priv := key.NewNode()
	ts.dialKey(t, priv)
	ts.dialKey(t, priv)
	ts.s.mu.Lock()
	ts.s.clients[priv.Public()].setActive(nil)
	ts.s.mu.Unlock()
	sender := ts.dial(t)
	disco := append([]byte(discoMagic), make([]byte, KeyLen+NonceLen)...)
	sender.Send(priv.Public(), disco)
	waitFor(t, "dup_client drop", func() bool { return ts.s.metrics.dropReason[dropDupClient].Value() == 1 })
}

func TestNotePreferred(t *testing.T) {
	ts := newTestServer(t)
	c := ts.dial(t)
	c.NotePreferred(true)
	c.NotePreferred(true) // no change
	waitFor(t, "home connection", func() bool { return ts.s.metrics.curHomeConns.Value() == 1 })
	c.NotePreferred(false)
	waitFor(t, "home connection gone", func() bool { return ts.s.metrics.curHomeConns.Value() == 0 })
	if ts.s.metrics.homeMovesIn.Value()+ts.s.metrics.homeMovesOut.Value() != 0 {
		t.Fatal("initial announcements counted as moves")
	}
	c.NotePreferred(true)
	waitFor(t, "home connection", func() bool { return ts.s.metrics.curHomeConns.Value() == 1 })
	c.Close()
	waitFor(t, "home connection released", func() bool { return ts.s.metrics.curHomeConns.Value() == 0 })
}

func TestQueueHeadDrop(t *testing.T) {
	// A receiver that never reads: after its socket buffers fill, the
	// queue fills and the oldest packets are dropped, never the sender.
	ts := newTestServer(t)
	slow := ts.dial(t)
	fast := ts.dial(t)
	pkt := make([]byte, MaxPacketSize)
	deadline := time.Now().Add(20 * time.Second)
	for ts.s.metrics.dropReason[dropQueueHead].Value() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no head drops")
		}
		for range 64 {
			if err := fast.Send(slow.PublicKey(), pkt); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ts.s.metrics.packetsDropped.Value() == 0 || ts.s.metrics.droppedOther.Value() == 0 {
		t.Fatal("drops not counted")
	}
}
