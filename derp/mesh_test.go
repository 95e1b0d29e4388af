package derp

import (
	"bytes"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/openderp/openderp/key"
)

const testMeshKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestMeshFramesNeedMeshKey(t *testing.T) {
	ts := newTestServer(t)
	ts.s.SetMeshKey(testMeshKey)
	other := key.NewNode().Public()
	tests := []struct {
		name string
		send func(c *Client) error
	}{
		{"WatchConns", func(c *Client) error { return c.WatchConnectionChanges() }},
		{"ClosePeer", func(c *Client) error { return c.ClosePeer(other) }},
		{"ForwardPacket", func(c *Client) error { return c.ForwardPacket(other, other, []byte("x")) }},
		{"wrong mesh key", func(c *Client) error { return c.WatchConnectionChanges() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []ClientOpt
			if tt.name == "wrong mesh key" {
				opts = append(opts, MeshKey(testMeshKey[:63]+"0"))
			}
			c := ts.dial(t, opts...)
			if err := tt.send(c); err != nil {
				t.Fatal(err)
			}
			c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			for {
				m, err := c.Recv()
				if err != nil {
					if errors.Is(err, ErrClientClosed) {
						t.Fatal("client closed locally")
					}
					break // the server closed the connection
				}
				if _, ok := m.(KeepAliveMessage); !ok {
					t.Fatalf("got %#v before close", m)
				}
			}
		})
	}
}

func TestWatchersAndPeerPresent(t *testing.T) {
	ts := newTestServer(t)
	ts.s.SetMeshKey(testMeshKey)
	if !ts.s.HasMeshKey() || ts.s.MeshKey() != testMeshKey {
		t.Fatal("mesh key not set")
	}
	a := ts.dial(t)
	w := ts.dial(t, MeshKey(testMeshKey))
	if err := w.WatchConnectionChanges(); err != nil {
		t.Fatal(err)
	}
	// The initial flood names a and the watcher itself.
	seen := map[key.NodePublic]PeerPresentMessage{}
	for len(seen) < 2 {
		m, ok := recvMsg(t, w).(PeerPresentMessage)
		if !ok {
			t.Fatalf("got %#v, want PeerPresent", m)
		}
		seen[m.Key] = m
	}
	pa := seen[a.PublicKey()]
	if pa.Flags != PeerPresentIsRegular || pa.IPPort.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("PeerPresent for a = %+v", pa)
	}
	if pw := seen[w.PublicKey()]; pw.Flags != PeerPresentIsMeshPeer {
		t.Fatalf("PeerPresent for watcher = %+v", pw)
	}
	// A new prober connection is announced with its flag.
	p := ts.dial(t, IsProber(true))
	if m := recvMsg(t, w).(PeerPresentMessage); m.Key != p.PublicKey() || m.Flags != PeerPresentIsProber {
		t.Fatalf("got %+v", m)
	}
	// Its departure is announced with PeerGone.
	p.Close()
	if m := recvMsg(t, w); m != (PeerGoneMessage{Peer: p.PublicKey()}) {
		t.Fatalf("got %#v", m)
	}
	if ts.s.metrics.watchers.Value() != 1 {
		t.Fatal("watchers gauge wrong")
	}
}

func TestClosePeer(t *testing.T) {
	ts := newTestServer(t)
	ts.s.SetMeshKey(testMeshKey)
	priv := key.NewNode()
	a1 := ts.dialKey(t, priv)
	a2 := ts.dialKey(t, priv)
	m := ts.dial(t, MeshKey(testMeshKey))
	if err := m.ClosePeer(priv.Public()); err != nil {
		t.Fatal(err)
	}
	if err := m.ClosePeer(key.NewNode().Public()); err != nil { // unknown: logged only
		t.Fatal(err)
	}
	for _, c := range []*Client{a1, a2} {
		c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			if _, err := c.Recv(); err != nil {
				break
			}
		}
	}
	// The requester stays connected.
	if err := m.SendPing([8]byte{9}); err != nil {
		t.Fatal(err)
	}
	if got := recvMsg(t, m); got != PongMessage([8]byte{9}) {
		t.Fatalf("got %#v", got)
	}
}

// fakeForwarder records forwarded packets.
type fakeForwarder struct {
	name string
	mu   sync.Mutex
	got  [][]byte
	ch   chan struct{}
}

func newFakeForwarder(name string) *fakeForwarder {
	return &fakeForwarder{name: name, ch: make(chan struct{}, 100)}
}

func (f *fakeForwarder) ForwardPacket(src, dst key.NodePublic, p []byte) error {
	f.mu.Lock()
	f.got = append(f.got, bytes.Clone(p))
	f.mu.Unlock()
	f.ch <- struct{}{}
	return nil
}

func (f *fakeForwarder) String() string { return f.name }

func (f *fakeForwarder) wait(t *testing.T) []byte {
	t.Helper()
	select {
	case <-f.ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: nothing forwarded", f.name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.got[len(f.got)-1]
}

func TestPacketForwarders(t *testing.T) {
	ts := newTestServer(t)
	s := ts.s
	a := ts.dial(t)
	remote := key.NewNode().Public()
	f1, f2 := newFakeForwarder("f1"), newFakeForwarder("f2")

	s.AddPacketForwarder(remote, f1)
	s.AddPacketForwarder(remote, f1) // no change
	if err := a.Send(remote, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if got := f1.wait(t); string(got) != "one" {
		t.Fatalf("f1 got %q", got)
	}
	// A second forwarder makes a multi-forwarder that keeps using f1.
	s.AddPacketForwarder(remote, f2)
	s.AddPacketForwarder(remote, f2)
	if s.metrics.multiForwarderCreated.Value() != 1 {
		t.Fatal("multiforwarder_created not counted")
	}
	a.Send(remote, []byte("two"))
	if got := f1.wait(t); string(got) != "two" {
		t.Fatalf("f1 got %q", got)
	}
	// Removing f1 hands over to f2 and collapses the multi-forwarder.
	s.RemovePacketForwarder(remote, f1)
	if s.metrics.multiForwarderDeleted.Value() != 1 {
		t.Fatal("multiforwarder_deleted not counted")
	}
	a.Send(remote, []byte("three"))
	if got := f2.wait(t); string(got) != "three" {
		t.Fatalf("f2 got %q", got)
	}
	s.RemovePacketForwarder(remote, f1) // not the current one
	if s.metrics.forwarderDeleteOtherVal.Value() != 1 {
		t.Fatal("packet_forwarder_delete_other_value not counted")
	}
	s.RemovePacketForwarder(remote, f2)
	s.RemovePacketForwarder(remote, f2) // absent: no-op
	a.Send(remote, []byte("four"))
	waitFor(t, "unknown_dest drop", func() bool { return s.metrics.dropReason[dropUnknownDest].Value() == 1 })
	if n := s.metrics.packetsForwardedOut.Value(); n != 3 {
		t.Fatalf("packets_forwarded_out = %d, want 3", n)
	}
	if err := s.ConsistencyCheck(); err != nil {
		t.Fatal(err)
	}
}

func TestForwarderRemovalSendsPeerGone(t *testing.T) {
	ts := newTestServer(t)
	ts.s.SetMeshKey(testMeshKey)
	b := ts.dial(t)
	mesh := ts.dial(t, MeshKey(testMeshKey))
	remote := key.NewNode().Public()
	f := newFakeForwarder("f")
	ts.s.AddPacketForwarder(remote, f)
	// A packet from the remote key arrives through the mesh peer.
	if err := mesh.ForwardPacket(remote, b.PublicKey(), []byte("via mesh")); err != nil {
		t.Fatal(err)
	}
	got := recvPacket(t, b)
	if got.Source != remote || string(got.Data) != "via mesh" {
		t.Fatalf("got %q from %v", got.Data, got.Source)
	}
	waitFor(t, "subscription", func() bool {
		ts.s.mu.Lock()
		defer ts.s.mu.Unlock()
		return len(ts.s.goneSubs[remote]) == 1
	})
	ts.s.RemovePacketForwarder(remote, f)
	if m := recvMsg(t, b); m != (PeerGoneMessage{Peer: remote}) {
		t.Fatalf("got %#v", m)
	}
	if ts.s.metrics.packetsForwardedIn.Value() != 1 {
		t.Fatal("packets_forwarded_in not counted")
	}
	// Forwarded packets for unknown keys are dropped, never re-forwarded;
	// disco ones earn the mesh peer a NotHere.
	ts.s.AddPacketForwarder(remote, f)
	disco := append([]byte(discoMagic), make([]byte, KeyLen+NonceLen)...)
	mesh.ForwardPacket(b.PublicKey(), remote, disco)
	for {
		m := recvMsg(t, mesh)
		if m == (PeerGoneMessage{Peer: remote, Reason: PeerGoneReasonNotHere}) {
			break
		}
		if _, ok := m.(KeepAliveMessage); !ok {
			t.Fatalf("got %#v", m)
		}
	}
	if ts.s.metrics.dropReason[dropUnknownDestOnFwd].Value() != 1 {
		t.Fatal("unknown_dest_on_fwd not counted")
	}
}

func TestLocalAndRemoteKeyKeepsForwarder(t *testing.T) {
	ts := newTestServer(t)
	priv := key.NewNode()
	a := ts.dialKey(t, priv)
	f := newFakeForwarder("f")
	ts.s.AddPacketForwarder(priv.Public(), f)
	// Local delivery beats the forwarder.
	b := ts.dial(t)
	b.Send(priv.Public(), []byte("local"))
	if got := recvPacket(t, a); string(got.Data) != "local" {
		t.Fatalf("got %q", got.Data)
	}
	a.Close()
	waitFor(t, "unregister", func() bool { return ts.s.numClients(false) == 1 })
	b.Send(priv.Public(), []byte("remote"))
	if got := f.wait(t); string(got) != "remote" {
		t.Fatalf("forwarder got %q", got)
	}
	ts.s.RemovePacketForwarder(priv.Public(), f)
	if n := ts.s.numClients(true); n != 1 {
		t.Fatalf("clients_total = %d, want 1", n)
	}
}
