package derp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openderp/openderp/key"
)

// The hostile-input suite at the DERP layer: clients that completed the
// handshake and then misbehave. Every case checks that a probe pair keeps
// relaying, that memory and goroutines stay bounded (figures logged), that
// nothing leaks afterwards, and that the right counter moved.

// hostileEnv is a loopback server with a probe pair.
type hostileEnv struct {
	ts   *testServer
	a, b *Client
	seq  int
	mem0 uint64
	gor0 int
	tb   testing.TB
}

func newHostileEnv(t *testing.T) *hostileEnv {
	ts := newTestServer(t)
	ts.s.SetMeshKey(testMeshKey)
	e := &hostileEnv{ts: ts, a: ts.dial(t), b: ts.dial(t), tb: t}
	e.exchange()
	e.mem0, e.gor0 = heapAndStacks()
	return e
}

func heapAndStacks() (uint64, int) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse, runtime.NumGoroutine()
}

// exchange checks that the probes relay a numbered packet each way.
func (e *hostileEnv) exchange() {
	e.tb.Helper()
	e.seq++
	for _, d := range [][2]*Client{{e.a, e.b}, {e.b, e.a}} {
		want := fmt.Sprintf("probe %d", e.seq)
		if err := d[0].Send(d[1].PublicKey(), []byte(want)); err != nil {
			e.tb.Fatalf("probe send: %v", err)
		}
		var p ReceivedPacket
		for range 100 {
			m := recvMsg(e.tb, d[1])
			if pk, ok := m.(ReceivedPacket); ok {
				p = pk
				break
			}
		}
		if string(p.Data) != want || p.Source != d[0].PublicKey() {
			e.tb.Fatalf("probe got %q from %v, want %q", p.Data, p.Source.ShortString(), want)
		}
	}
}

// report logs memory and goroutine growth since the probes connected and
// fails if they exceed the given bounds.
func (e *hostileEnv) report(maxBytes uint64, maxGoroutines int) {
	e.tb.Helper()
	mem, g := heapAndStacks()
	grow := int64(mem) - int64(e.mem0)
	e.tb.Logf("memory %+d KiB, goroutines %+d", grow/1024, g-e.gor0)
	if grow > int64(maxBytes) {
		e.tb.Errorf("memory grew by %d KiB, bound %d KiB", grow/1024, maxBytes/1024)
	}
	if g-e.gor0 > maxGoroutines {
		e.tb.Errorf("goroutines grew by %d, bound %d", g-e.gor0, maxGoroutines)
	}
}

func (e *hostileEnv) counter(name string) int64 {
	return e.ts.s.vars.Get(name).(interface{ Value() int64 }).Value()
}

// attacker returns a raw connection that has completed the handshake.
func (e *hostileEnv) attacker(opts ...ClientOpt) (*Client, net.Conn) {
	c := e.ts.dial(e.tb, opts...)
	return c, c.nc.(net.Conn)
}

// waitServerClosed fails unless the server closes nc within 10 s.
func waitServerClosed(t testing.TB, nc net.Conn) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, nc); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("server kept the connection")
		}
	}
}

func frameBytes(t FrameType, n uint32, payload []byte) []byte {
	b := []byte{byte(t), 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], n)
	return append(b, payload...)
}

// TestHostileFrames sends malformed frames after a valid handshake: every
// frame type truncated, oversized and with a lying length, garbage, and the
// mesh-only frames without the mesh key. Each ends that connection only,
// counted in counter_protocol_errors.
func TestHostileFrames(t *testing.T) {
	type tcase struct {
		name   string
		stream []byte
		eof    bool // half-close after the stream (truncation)
	}
	var cases []tcase
	for ft := FrameType(0); ft <= 0x20; ft++ {
		cases = append(cases, tcase{fmt.Sprintf("%v truncated", ft), frameBytes(ft, 100, make([]byte, 10)), true})
	}
	// Frames the server reads are bounded; unknown and server-only types
	// are skipped whatever their length, as by the reference, so for them
	// an oversized length only makes the server discard.
	for _, ft := range []FrameType{FrameSendPacket, FrameForwardPacket, FrameNotePreferred, FrameWatchConns, FrameClosePeer, FramePing} {
		cases = append(cases, tcase{fmt.Sprintf("%v oversized", ft), frameBytes(ft, maxFrameSize+1, nil), false})
	}
	for _, lie := range []struct {
		ft FrameType
		n  uint32
	}{
		{FrameSendPacket, KeyLen - 1}, {FrameSendPacket, KeyLen + MaxPacketSize + 1},
		{FrameForwardPacket, 2*KeyLen - 1}, {FramePing, 7}, {FramePing, maxPingLen + 1},
		{FrameNotePreferred, 0}, {FrameNotePreferred, 2}, {FrameWatchConns, 1}, {FrameClosePeer, KeyLen - 1},
	} {
		cases = append(cases, tcase{fmt.Sprintf("%v lying length %d", lie.ft, lie.n), frameBytes(lie.ft, lie.n, make([]byte, lie.n)), false})
	}
	r := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(r.Uint32())
	}
	garbage[0] = byte(FrameSendPacket) // a known type, so the length decides
	cases = append(cases, tcase{"garbage", garbage, false})
	k := key.NewNode().Public().AppendTo(nil)
	cases = append(cases,
		tcase{"forward without mesh key", frameBytes(FrameForwardPacket, 2*KeyLen+1, append(append(k, k...), 'x')), false},
		tcase{"watch without mesh key", frameBytes(FrameWatchConns, 0, nil), false},
		tcase{"close peer without mesh key", frameBytes(FrameClosePeer, KeyLen, k), false},
	)

	e := newHostileEnv(t)
	for _, tc := range cases {
		before := e.counter("counter_protocol_errors")
		_, nc := e.attacker()
		nc.Write(tc.stream)
		if tc.eof {
			nc.(*net.TCPConn).CloseWrite()
		}
		t.Log(tc.name)
		waitServerClosed(t, nc)
		waitFor(t, "protocol error counted", func() bool { return e.counter("counter_protocol_errors") == before+1 })
		e.exchange()
	}
	waitFor(t, "attackers unregistered", func() bool { return e.counter("gauge_current_connections") == 2 })
	t.Logf("%d hostile streams, each ended its own connection", len(cases))
	e.report(4<<20, 4)
}

// TestHostileClosePeerWithoutKey checks that a ClosePeer from a client
// without the mesh key closes only the sender, not its target.
func TestHostileClosePeerWithoutKey(t *testing.T) {
	e := newHostileEnv(t)
	c, nc := e.attacker()
	if err := c.ClosePeer(e.a.PublicKey()); err != nil {
		t.Fatal(err)
	}
	waitServerClosed(t, nc)
	e.exchange()
}

// TestHostileForgedSource shows that a source cannot be forged: SendPacket
// carries no source, so the receiver always sees the sender's handshake
// key, whatever the payload claims; ForwardPacket, which does carry one,
// is refused without the mesh key.
func TestHostileForgedSource(t *testing.T) {
	e := newHostileEnv(t)
	liar, nc := e.attacker()
	claimed := e.a.PublicKey().AppendTo(nil)
	if err := liar.Send(e.b.PublicKey(), append(claimed, "I am a"...)); err != nil {
		t.Fatal(err)
	}
	p := recvPacket(t, e.b)
	if p.Source != liar.PublicKey() {
		t.Fatalf("packet source %v, want the sender %v", p.Source.ShortString(), liar.PublicKey().ShortString())
	}
	if err := liar.ForwardPacket(e.a.PublicKey(), e.b.PublicKey(), []byte("forged")); err != nil {
		t.Fatal(err)
	}
	waitServerClosed(t, nc)
	if got := e.counter("packets_forwarded_in"); got != 0 {
		t.Fatalf("packets_forwarded_in = %d", got)
	}
	e.exchange()
}

// TestHostileFlood has one client flood a receiver that does not read:
// the receiver's queue stays bounded, the excess is dropped and counted,
// and the probe pair is unaffected.
func TestHostileFlood(t *testing.T) {
	e := newHostileEnv(t)
	victim := e.ts.dial(t) // never reads
	flooder, _ := e.attacker()
	const n = 20000
	pkt := bytes.Repeat([]byte{'f'}, 1000)
	for i := range n {
		if err := flooder.Send(victim.PublicKey(), pkt); err != nil {
			t.Fatalf("flood send %d: %v", i, err)
		}
		if i%2000 == 0 {
			e.exchange()
		}
	}
	waitFor(t, "flood received by the server", func() bool { return e.counter("packets_received") >= n })
	drops := e.counter("packets_dropped")
	t.Logf("%d packets of %d bytes to a receiver that never reads: %d dropped", n, len(pkt), drops)
	if drops == 0 {
		t.Fatal("no drops counted")
	}
	e.exchange()
	// 20 MB were sent: what the server holds must be a small fraction
	// (queue plus socket buffers).
	e.report(8<<20, 8)
}

// TestHostileWatcherNeverReads has a mesh watcher that never reads while
// clients come and go: the others keep relaying and memory stays bounded
// (the watcher is cut off by the write timeout once its socket is full).
func TestHostileWatcherNeverReads(t *testing.T) {
	e := newHostileEnv(t)
	e.ts.s.WriteTimeout = 200 * time.Millisecond
	w, _ := e.attacker(MeshKey(testMeshKey))
	if err := w.WatchConnectionChanges(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "watcher registered", func() bool { return e.counter("gauge_watchers") == 1 })
	for i := range 100 {
		c := e.ts.dial(t)
		c.Close()
		if i%25 == 0 {
			e.exchange()
		}
	}
	e.exchange()
	e.report(8<<20, 8)
}

// TestFaultPeerKilledMidFrame kills a sender in the middle of a
// SendPacket frame: the receiver gets nothing of it, the connection's end
// is counted, and the probes relay.
func TestFaultPeerKilledMidFrame(t *testing.T) {
	e := newHostileEnv(t)
	before := e.counter("counter_protocol_errors")
	_, nc := e.attacker()
	frame := frameBytes(FrameSendPacket, KeyLen+1000, append(e.b.PublicKey().AppendTo(nil), make([]byte, 400)...))
	nc.Write(frame)
	nc.Close()
	waitFor(t, "the cut connection counted", func() bool { return e.counter("counter_protocol_errors") == before+1 })
	e.exchange() // b's next packet is the probe, not a fragment
	if got := e.counter("packets_received"); got != 4 {
		t.Errorf("packets_received = %d, want only the 4 probes", got)
	}
}

// TestExactlyOnceOrCounted sends numbered packets to a receiver that reads
// slowly, so that its queue overflows: every packet is either delivered
// exactly once, to the right key, or counted in packets_dropped; none is
// lost silently or duplicated.
func TestExactlyOnceOrCounted(t *testing.T) {
	ts := newTestServer(t)
	sender, receiver := ts.dial(t), ts.dial(t)
	const n = 5000
	got := make(map[uint64]bool) // owned by the receiving goroutine
	var delivered, dups atomic.Int64
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		for {
			m, err := receiver.Recv()
			if err != nil {
				return // closed by the test
			}
			p, ok := m.(ReceivedPacket)
			if !ok || p.Source != sender.PublicKey() {
				continue
			}
			seq := binary.BigEndian.Uint64(p.Data)
			if got[seq] {
				dups.Add(1)
			} else {
				delivered.Add(1)
			}
			got[seq] = true
			if seq%64 == 0 {
				time.Sleep(time.Millisecond) // a slow reader, so the queue overflows
			}
		}
	}()
	for i := range uint64(n) {
		pkt := binary.BigEndian.AppendUint64(nil, i)
		pkt = append(pkt, make([]byte, 1200)...)
		if err := sender.Send(receiver.PublicKey(), pkt); err != nil {
			t.Fatal(err)
		}
	}
	dropped := func() int64 { return ts.s.vars.Get("packets_dropped").(interface{ Value() int64 }).Value() }
	// Every packet must end up delivered or counted; a silent loss makes
	// this wait time out.
	waitFor(t, "every packet delivered or counted", func() bool { return delivered.Load()+dropped() >= n })
	receiver.Close()
	<-recvDone
	t.Logf("%d sent: %d delivered once, %d dropped and counted, %d duplicates", n, delivered.Load(), dropped(), dups.Load())
	if dups.Load() != 0 {
		t.Errorf("%d duplicates", dups.Load())
	}
	if delivered.Load()+dropped() != n {
		t.Errorf("delivered %d + dropped %d != sent %d", delivered.Load(), dropped(), n)
	}
}
