package derp

import (
	"fmt"
	"testing"

	"github.com/openderp/openderp/key"
)

// TestPeerGoneAgainAfterReturn checks that a receiver forgets a source
// that left: when the source comes back, sends again and leaves again, the
// receiver hears PeerGone a second time, and it does not keep departed
// sources meanwhile.
func TestPeerGoneAgainAfterReturn(t *testing.T) {
	ts := newTestServer(t)
	a := ts.dial(t)
	bPriv := key.NewNode()
	for round := range 3 {
		b := ts.dialKey(t, bPriv)
		if err := b.Send(a.PublicKey(), []byte("hello")); err != nil {
			t.Fatal(err)
		}
		recvPacket(t, a)
		conns := ts.s.metrics.curConns.Value()
		b.Close()
		waitFor(t, "b gone", func() bool { return ts.s.metrics.curConns.Value() == conns-1 })
		// The PeerGone was queued as b left; a pong queued now follows it.
		a.SendPing([8]byte{byte(round)})
		if m := recvMsg(t, a); m != (PeerGoneMessage{Peer: bPriv.Public(), Reason: PeerGoneReasonDisconnected}) {
			t.Fatalf("round %d: got %#v, want PeerGone for b", round, m)
		}
		if m := recvMsg(t, a); m != PongMessage([8]byte{byte(round)}) {
			t.Fatalf("round %d: got %#v, want pong", round, m)
		}
	}
	ts.s.mu.Lock()
	subs := len(ts.s.goneSubs)
	ts.s.mu.Unlock()
	if subs != 0 {
		t.Fatalf("%d PeerGone subscriptions left for departed sources", subs)
	}
}

// fakeConns registers n connections of one key directly, without sockets.
func fakeConns(s *Server, k key.NodePublic, n int) ([]*sclient, error) {
	cs := make([]*sclient, n)
	for i := range cs {
		cs[i] = &sclient{s: s, key: k, connNum: int64(i)}
		if err := s.registerClient(cs[i]); err != nil {
			return nil, err
		}
	}
	return cs, nil
}

// checkActivityList verifies the dup set's activity list: linked both
// ways, each connection at most once, only members, lastSpoke only at the
// tail; it returns the list, oldest first.
func checkActivityList(t *testing.T, d *dupSet) []*sclient {
	t.Helper()
	var got []*sclient
	seen := map[*sclient]bool{}
	var prev *sclient
	for c := d.head; c != nil; c = c.dupNext {
		if seen[c] || len(got) > len(d.conns) {
			t.Fatal("activity list has a cycle or a repeat")
		}
		if _, ok := d.conns[c]; !ok || !c.inRecent || c.dupPrev != prev {
			t.Fatal("activity list holds a stranger or a bad link")
		}
		if c.lastSpoke.Load() != (c == d.tail) {
			t.Fatal("lastSpoke not only at the tail")
		}
		seen[c], prev = true, c
		got = append(got, c)
	}
	if prev != d.tail {
		t.Fatal("tail is not the last element")
	}
	return got
}

func TestDupActivityList(t *testing.T) {
	s := NewServer(key.NewNode(), nil)
	defer s.Close()
	k := key.NewNode().Public()
	cs, err := fakeConns(s, k, 4)
	if err != nil {
		t.Fatal(err)
	}
	set := s.clients[k]
	// Two connections taking turns many times: the list stays bounded.
	for i := range 1000 {
		s.noteActive(cs[i%2])
	}
	if got := checkActivityList(t, set.dup); len(got) != 4 || got[3] != cs[1] || got[2] != cs[0] {
		t.Fatalf("list after turns: %d entries", len(got))
	}
	if set.active != cs[1] || !cs[1].isLastSpeaker() || cs[0].isLastSpeaker() {
		t.Fatal("last speaker is not the active connection")
	}
	// The active one leaves: the previous speaker takes over.
	s.unregisterClient(cs[1])
	if set.active != cs[0] || set.route.Load() != cs[0] {
		t.Fatal("previous speaker did not take over")
	}
	checkActivityList(t, set.dup)
	for _, c := range cs[2:] {
		s.unregisterClient(c)
	}
	if set.dup != nil || set.active != cs[0] || cs[0].inRecent || cs[0].lastSpoke.Load() {
		t.Fatal("dup set not dissolved cleanly")
	}
	s.unregisterClient(cs[0])
	if set.route.Load() != nil {
		t.Fatal("departed set still routable")
	}
}

func TestMaxConnsPerKey(t *testing.T) {
	for _, tc := range []struct{ max, want int }{{0, DefaultMaxConnsPerKey}, {1, 1}, {3, 3}} {
		t.Run(fmt.Sprint(tc.max), func(t *testing.T) {
			s := NewServer(key.NewNode(), nil)
			defer s.Close()
			s.MaxConnsPerKey = tc.max
			k := key.NewNode().Public()
			if _, err := fakeConns(s, k, tc.want); err != nil {
				t.Fatal(err)
			}
			if err := s.registerClient(&sclient{s: s, key: k}); err != ErrTooManyConnections {
				t.Fatalf("connection %d: %v, want ErrTooManyConnections", tc.want+1, err)
			}
			if n := s.clients[k].len(); n != tc.want {
				t.Fatalf("%d connections registered, want %d", n, tc.want)
			}
		})
	}
}

// BenchmarkDupSwitch measures making another connection of a dup set the
// active one; it must not grow with the set.
func BenchmarkDupSwitch(b *testing.B) {
	for _, n := range []int{2, 100} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s := NewServer(key.NewNode(), nil)
			defer s.Close()
			cs, err := fakeConns(s, key.NewNode().Public(), n)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				s.noteActive(cs[i%n])
			}
		})
	}
}
