package interop

import (
	"bufio"
	"bytes"
	"context"
	"net/netip"
	"testing"

	ourderp "github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derp/derptest"
	ourkey "github.com/openderp/openderp/key"
	tsderp "tailscale.com/derp"
	tskey "tailscale.com/types/key"
)

// Every combination of server (ours, theirs) and sending and receiving
// client (ours, theirs): packets in both directions, ping/pong, and the
// PeerGone a receiver gets when its sender leaves.
func TestRelayAllCombinations(t *testing.T) {
	forEachPair(t, func(t *testing.T, r relay, dialA, dialB func(*testing.T, relay, bool) peer) {
		a, b := dialA(t, r, false), dialB(t, r, false)
		for _, size := range []int{0, 1280, 65536} {
			pkt := string(bytes.Repeat([]byte{'x'}, size))
			if err := a.send(b.pub(), []byte(pkt)); err != nil {
				t.Fatal(err)
			}
			m := next(t, b)
			if m.kind != "packet" || m.src != a.pub() || m.data != pkt {
				t.Fatalf("b got %s of %d bytes from %x", m.kind, len(m.data), m.src[:4])
			}
		}
		if err := b.send(a.pub(), []byte("reply")); err != nil {
			t.Fatal(err)
		}
		if m := next(t, a); m.kind != "packet" || m.data != "reply" || m.src != b.pub() {
			t.Fatalf("a got %+v", m)
		}
		if err := a.ping([8]byte{1, 2, 3, 4, 5, 6, 7, 8}); err != nil {
			t.Fatal(err)
		}
		if m := next(t, a); m.kind != "pong" || m.data != "\x01\x02\x03\x04\x05\x06\x07\x08" {
			t.Fatalf("a got %+v, want pong", m)
		}
		if err := a.notePreferred(true); err != nil {
			t.Fatal(err)
		}
		a.close()
		if m := next(t, b); m.kind != "gone" || m.src != a.pub() || m.reason != 0 {
			t.Fatalf("b got %+v, want PeerGone(disconnected)", m)
		}
	})
}

// A disco-looking packet to a key nobody holds earns the sender a PeerGone
// with reason NotHere from either server, for either client.
func TestPeerGoneNotHere(t *testing.T) {
	disco := append([]byte("TS\xf0\x9f\x92\xac"), make([]byte, 56)...)
	for _, rs := range relays {
		for _, c := range clients {
			t.Run(rs.name+"/"+c.name, func(t *testing.T) {
				r := rs.make(t)
				a := c.dial(t, r, false)
				nobody := ourkey.NewNode().Public().Raw32()
				if err := a.send(nobody, disco); err != nil {
					t.Fatal(err)
				}
				if m := next(t, a); m.kind != "gone" || m.src != nobody || m.reason != 1 {
					t.Fatalf("got %+v, want PeerGone(not here)", m)
				}
			})
		}
	}
}

// Mesh watchers: PeerPresent with address and flags, then PeerGone,
// whichever side serves and whichever side watches.
func TestWatchConnections(t *testing.T) {
	forEachPair(t, func(t *testing.T, r relay, dialW, dialC func(*testing.T, relay, bool) peer) {
		w := dialW(t, r, true)
		if err := w.watch(); err != nil {
			t.Fatal(err)
		}
		// The initial flood names the watcher itself, a mesh peer.
		if m := next(t, w); m.kind != "present" || m.src != w.pub() || m.flags != 0x02 {
			t.Fatalf("initial flood: %+v", m)
		}
		c := dialC(t, r, false)
		m := next(t, w)
		if m.kind != "present" || m.src != c.pub() || m.flags != 0x01 || m.ipp.Addr() != netip.MustParseAddr("127.0.0.1") || m.ipp.Port() == 0 {
			t.Fatalf("PeerPresent for the new client: %+v", m)
		}
		c.close()
		if m := next(t, w); m.kind != "gone" || m.src != c.pub() || m.reason != 0 {
			t.Fatalf("got %+v, want PeerGone", m)
		}
	})
}

// The same over in-memory pipes instead of TCP: their client on our
// server and our client on theirs, each sending to itself through the
// server.
func TestOverPipes(t *testing.T) {
	t.Run("theirClient-ourServer", func(t *testing.T) {
		s := ourderp.NewServer(ourkey.NewNode(), t.Logf)
		defer s.Close()
		cc, sc := derptest.Pipe()
		go s.Accept(context.Background(), sc, bufio.NewReadWriter(bufio.NewReader(sc), bufio.NewWriter(sc)), "192.0.2.1:1")
		priv := tskey.NewNode()
		c, err := tsderp.NewClient(priv, cc, bufio.NewReadWriter(bufio.NewReader(cc), bufio.NewWriter(cc)), t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		p := &theirPeer{c, priv, cc}
		expectInfo(t, p)
		if err := p.send(p.pub(), []byte("loop")); err != nil {
			t.Fatal(err)
		}
		if m := next(t, p); m.kind != "packet" || m.data != "loop" {
			t.Fatalf("got %+v", m)
		}
	})
	t.Run("ourClient-theirServer", func(t *testing.T) {
		s := tsderp.NewServer(tskey.NewNode(), t.Logf)
		defer s.Close()
		cc, sc := derptest.Pipe()
		go s.Accept(context.Background(), sc, bufio.NewReadWriter(bufio.NewReader(sc), bufio.NewWriter(sc)), "192.0.2.1:1")
		c, err := ourderp.NewClient(ourkey.NewNode(), cc, bufio.NewReadWriter(bufio.NewReader(cc), bufio.NewWriter(cc)), t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		p := &ourPeer{c, cc}
		expectInfo(t, p)
		if err := p.send(p.pub(), []byte("loop")); err != nil {
			t.Fatal(err)
		}
		if m := next(t, p); m.kind != "packet" || m.data != "loop" {
			t.Fatalf("got %+v", m)
		}
	})
}
