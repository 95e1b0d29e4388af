package interop

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	ourderp "github.com/openderp/openderp/derp"
	ourkey "github.com/openderp/openderp/key"
	tsderp "tailscale.com/derp"
	tskey "tailscale.com/types/key"
)

// msg is a received DERP message in a form common to both
// implementations.
type msg struct {
	kind   string // packet, gone, present, info, pong, ping, keepalive, other
	src    [32]byte
	data   string
	reason byte
	ipp    netip.AddrPort
	flags  byte
}

// peer is a DERP client of either implementation.
type peer interface {
	pub() [32]byte
	send(dst [32]byte, b []byte) error
	ping(d [8]byte) error
	watch() error
	notePreferred(bool) error
	recv() (msg, error)
	close()
}

// relay is a DERP server of either implementation on a loopback listener.
type relay struct {
	name string
	addr string
	pub  [32]byte
}

func raw(k interface{ MarshalText() ([]byte, error) }) [32]byte {
	var ok ourkey.NodePublic
	t, _ := k.MarshalText()
	if err := ok.UnmarshalText(t); err != nil {
		panic(err)
	}
	return ok.Raw32()
}

func serve(t *testing.T, accept func(context.Context, net.Conn, *bufio.ReadWriter, string)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				accept(context.Background(), nc, bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc)), nc.RemoteAddr().String())
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

const meshKey = "1111111111111111111111111111111111111111111111111111111111111111"

func ourRelay(t *testing.T) relay {
	s := ourderp.NewServer(ourkey.NewNode(), t.Logf)
	s.SetMeshKey(meshKey)
	addr := serve(t, func(ctx context.Context, nc net.Conn, brw *bufio.ReadWriter, ra string) { s.Accept(ctx, nc, brw, ra) })
	t.Cleanup(func() { s.Close() })
	return relay{"ours", addr, s.PublicKey().Raw32()}
}

func theirRelay(t *testing.T) relay {
	s := tsderp.NewServer(tskey.NewNode(), t.Logf)
	s.SetMeshKey(meshKey)
	addr := serve(t, func(ctx context.Context, nc net.Conn, brw *bufio.ReadWriter, ra string) { s.Accept(ctx, nc, brw, ra) })
	t.Cleanup(func() { s.Close() })
	return relay{"theirs", addr, raw(s.PublicKey())}
}

var relays = []struct {
	name string
	make func(*testing.T) relay
}{{"ourServer", ourRelay}, {"theirServer", theirRelay}}

var clients = []struct {
	name string
	dial func(t *testing.T, r relay, mesh bool) peer
}{{"ourClient", dialOurs}, {"theirClient", dialTheirs}}

// ---- our client ----

type ourPeer struct {
	c  *ourderp.Client
	nc net.Conn
}

func dialOurs(t *testing.T, r relay, mesh bool) peer {
	t.Helper()
	nc, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	var opts []ourderp.ClientOpt
	if mesh {
		opts = append(opts, ourderp.MeshKey(meshKey))
	}
	c, err := ourderp.NewClient(ourkey.NewNode(), nc, bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc)), t.Logf, opts...)
	if err != nil {
		t.Fatal(err)
	}
	p := &ourPeer{c, nc}
	t.Cleanup(p.close)
	expectInfo(t, p)
	return p
}

func (p *ourPeer) pub() [32]byte { return p.c.PublicKey().Raw32() }
func (p *ourPeer) send(dst [32]byte, b []byte) error {
	return p.c.Send(ourkey.NodePublicFromRaw32(dst), b)
}
func (p *ourPeer) ping(d [8]byte) error       { return p.c.SendPing(d) }
func (p *ourPeer) watch() error               { return p.c.WatchConnectionChanges() }
func (p *ourPeer) notePreferred(v bool) error { return p.c.NotePreferred(v) }
func (p *ourPeer) close()                     { p.c.Close() }
func (p *ourPeer) recv() (msg, error) {
	p.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	m, err := p.c.Recv()
	if err != nil {
		return msg{}, err
	}
	switch m := m.(type) {
	case ourderp.ReceivedPacket:
		return msg{kind: "packet", src: m.Source.Raw32(), data: string(m.Data)}, nil
	case ourderp.PeerGoneMessage:
		return msg{kind: "gone", src: m.Peer.Raw32(), reason: byte(m.Reason)}, nil
	case ourderp.PeerPresentMessage:
		return msg{kind: "present", src: m.Key.Raw32(), ipp: m.IPPort, flags: byte(m.Flags)}, nil
	case ourderp.ServerInfoMessage:
		return msg{kind: "info"}, nil
	case ourderp.PongMessage:
		return msg{kind: "pong", data: string(m[:])}, nil
	case ourderp.PingMessage:
		return msg{kind: "ping", data: string(m[:])}, nil
	case ourderp.KeepAliveMessage:
		return msg{kind: "keepalive"}, nil
	}
	return msg{kind: "other"}, nil
}

// ---- their client ----

type theirPeer struct {
	c    *tsderp.Client
	priv tskey.NodePrivate
	nc   net.Conn
}

func dialTheirs(t *testing.T, r relay, mesh bool) peer {
	t.Helper()
	nc, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	priv := tskey.NewNode()
	var opts []tsderp.ClientOpt
	if mesh {
		opts = append(opts, tsderp.MeshKey(meshKey))
	}
	c, err := tsderp.NewClient(priv, nc, bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc)), t.Logf, opts...)
	if err != nil {
		t.Fatal(err)
	}
	p := &theirPeer{c, priv, nc}
	t.Cleanup(p.close)
	expectInfo(t, p)
	return p
}

func tsPub(raw32 [32]byte) tskey.NodePublic {
	var k tskey.NodePublic
	if err := k.UnmarshalText([]byte(ourkey.NodePublicFromRaw32(raw32).String())); err != nil {
		panic(err)
	}
	return k
}

func (p *theirPeer) pub() [32]byte                     { return raw(p.priv.Public()) }
func (p *theirPeer) send(dst [32]byte, b []byte) error { return p.c.Send(tsPub(dst), b) }
func (p *theirPeer) ping(d [8]byte) error              { return p.c.SendPing(d) }
func (p *theirPeer) watch() error                      { return p.c.WatchConnectionChanges() }
func (p *theirPeer) notePreferred(v bool) error        { return p.c.NotePreferred(v) }
func (p *theirPeer) close()                            { p.nc.Close() }
func (p *theirPeer) recv() (msg, error) {
	p.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	m, err := p.c.Recv()
	if err != nil {
		return msg{}, err
	}
	switch m := m.(type) {
	case tsderp.ReceivedPacket:
		return msg{kind: "packet", src: raw(m.Source), data: string(m.Data)}, nil
	case tsderp.PeerGoneMessage:
		return msg{kind: "gone", src: raw(m.Peer), reason: byte(m.Reason)}, nil
	case tsderp.PeerPresentMessage:
		return msg{kind: "present", src: raw(m.Key), ipp: m.IPPort, flags: byte(m.Flags)}, nil
	case tsderp.ServerInfoMessage:
		return msg{kind: "info"}, nil
	case tsderp.PongMessage:
		return msg{kind: "pong", data: string(m[:])}, nil
	case tsderp.PingMessage:
		return msg{kind: "ping", data: string(m[:])}, nil
	case tsderp.KeepAliveMessage:
		return msg{kind: "keepalive"}, nil
	}
	return msg{kind: "other"}, nil
}

// ---- helpers ----

func expectInfo(t *testing.T, p peer) {
	t.Helper()
	m, err := p.recv()
	if err != nil {
		t.Fatalf("waiting for ServerInfo: %v", err)
	}
	if m.kind != "info" {
		t.Fatalf("first message %q, want ServerInfo", m.kind)
	}
}

// next returns the next message that is not a keep-alive.
func next(t *testing.T, p peer) msg {
	t.Helper()
	for range 100 {
		m, err := p.recv()
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		if m.kind != "keepalive" {
			return m
		}
	}
	t.Fatal("only keep-alives")
	return msg{}
}

// forEachPair runs f for every combination of server and two clients.
func forEachPair(t *testing.T, f func(t *testing.T, r relay, dialA, dialB func(*testing.T, relay, bool) peer)) {
	for _, rs := range relays {
		for _, ca := range clients {
			for _, cb := range clients {
				t.Run(rs.name+"/"+ca.name+"-"+cb.name, func(t *testing.T) {
					f(t, rs.make(t), ca.dial, cb.dial)
				})
			}
		}
	}
}
