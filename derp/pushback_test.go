package derp

import (
	"context"
	"encoding/binary"
	"expvar"
	"sync"
	"testing"
	"time"

	"github.com/openderp/openderp/derp/derptest"
	"github.com/openderp/openderp/key"
)

// pipeRelay serves clients of s over in-memory pipes.
type pipeRelay struct {
	s  *Server
	wg sync.WaitGroup
}

func newPipeRelay(t *testing.T) *pipeRelay {
	ps := &pipeRelay{s: NewServer(key.NewNode(), t.Logf)}
	t.Cleanup(func() {
		ps.s.Close()
		ps.wg.Wait()
	})
	return ps
}

// dial connects a client over a pipe holding at most bufSize bytes each
// way and consumes ServerInfo.
func (ps *pipeRelay) dial(t *testing.T, bufSize int) *Client {
	t.Helper()
	cc, sc := derptest.PipeSize(bufSize)
	ps.wg.Add(1)
	go func() {
		defer ps.wg.Done()
		ps.s.Accept(context.Background(), sc, bufioRW(sc), "127.0.0.1:9")
	}()
	c, err := NewClient(key.NewNode(), cc, bufioRW(cc), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if m := recvMsg(t, c); m == nil {
		t.Fatal("no ServerInfo")
	}
	return c
}

func numbered(i int) []byte {
	b := make([]byte, 1000)
	binary.BigEndian.PutUint32(b, uint32(i))
	return b
}

// TestPushBackInsteadOfDrops checks that a sender outrunning its receiver
// is paused rather than having its packets dropped: every packet arrives,
// in order, and nothing is dropped.
func TestPushBackInsteadOfDrops(t *testing.T) {
	ps := newPipeRelay(t)
	ps.s.PushBackWait = time.Minute // never give up in this test
	src, dst := ps.dial(t, 64<<10), ps.dial(t, 64<<10)
	const n = 300
	errc := make(chan error, 1)
	go func() {
		for i := range n {
			if err := src.Send(dst.PublicKey(), numbered(i)); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	// dst reads nothing until the server has had to hold src back.
	waitFor(t, "a push-back wait", func() bool { return ps.s.metrics.pushBackWaits.Value() > 0 })
	if got := ps.s.ExpVar().(*expvar.Map).Get("counter_push_back_waits").String(); got == "0" {
		t.Errorf("counter_push_back_waits = %s after a wait", got)
	}
	for i := range n {
		p := recvPacket(t, dst)
		if got := int(binary.BigEndian.Uint32(p.Data)); got != i {
			t.Fatalf("packet %d: got number %d", i, got)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if d := ps.s.metrics.packetsDropped.Value(); d != 0 {
		t.Fatalf("%d packets dropped", d)
	}
}

// TestStuckReceiverDoesNotHoldBackOthers checks the bound on push-back:
// one sender alternates between a receiver that reads and one that never
// does. The stuck one's writer blocks, the server stops waiting for it
// and drops its packets, and the reading one still gets every packet.
func TestStuckReceiverDoesNotHoldBackOthers(t *testing.T) {
	ps := newPipeRelay(t)
	ps.s.PushBackWait = 5 * time.Millisecond
	ps.s.WriteTimeout = time.Minute // the stuck receiver stays connected
	src, fast := ps.dial(t, 64<<10), ps.dial(t, 64<<10)
	stuck := ps.dial(t, 1024)
	const n = 400
	errc := make(chan error, 1)
	go func() {
		for i := range n {
			dst := fast.PublicKey()
			if i%2 == 1 {
				dst = stuck.PublicKey()
			}
			if err := src.Send(dst, numbered(i)); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i := 0; i < n; i += 2 {
		p := recvPacket(t, fast)
		if got := int(binary.BigEndian.Uint32(p.Data)); got != i {
			t.Fatalf("fast receiver: got number %d, want %d", got, i)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	m := ps.s.metrics
	// Of the stuck receiver's n/2 packets, at most a queue, a write
	// buffer and what its pipe holds are not dropped.
	if d := m.dropReason[dropQueueHead].Value(); d < n/2-int64(ps.s.queueDepth+writeBufferSize/1000+2) {
		t.Fatalf("only %d packets for the stuck receiver dropped", d)
	}
}
