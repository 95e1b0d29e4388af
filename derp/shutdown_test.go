package derp

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/openderp/openderp/derp/derptest"
	"github.com/openderp/openderp/key"
)

// pipeClientSize connects a client to s over an in-memory pipe holding size
// bytes each way and reads its ServerInfo. The returned function waits
// for Accept to return.
func pipeClientSize(t *testing.T, s *Server, size int, opts ...ClientOpt) (*Client, func()) {
	t.Helper()
	cc, sc := derptest.PipeSize(size)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.Accept(context.Background(), sc, bufioRW(sc), "127.0.0.1:9")
	}()
	c, err := NewClient(key.NewNode(), cc, bufioRW(cc), t.Logf, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if m := recvMsg(t, c); m == nil {
		t.Fatal("no ServerInfo")
	} else if _, ok := m.(ServerInfoMessage); !ok {
		t.Fatalf("first message = %T, want ServerInfoMessage", m)
	}
	return c, wg.Wait
}

// recvUntilRestarting receives until a Restarting frame, skipping
// keep-alives and collecting packets.
func recvUntilRestarting(t *testing.T, c *Client) (ServerRestartingMessage, []ReceivedPacket) {
	t.Helper()
	var pkts []ReceivedPacket
	for range 1000 {
		switch m := recvMsg(t, c).(type) {
		case ServerRestartingMessage:
			return m, pkts
		case ReceivedPacket:
			m.Data = bytes.Clone(m.Data)
			pkts = append(pkts, m)
		case KeepAliveMessage:
		default:
			t.Fatalf("got %#v, want Restarting", m)
		}
	}
	t.Fatal("no Restarting frame in 1000 messages")
	return ServerRestartingMessage{}, nil
}

func TestShutdownAdvisesAndKeepsRelaying(t *testing.T) {
	ts := newTestServer(t)
	ts.s.SetMeshKey("mesh")
	a, b := ts.dial(t), ts.dial(t)
	mesh := ts.dial(t, MeshKey("mesh"))
	if err := mesh.WatchConnectionChanges(); err != nil {
		t.Fatal(err)
	}

	ctx, endGrace := context.WithCancel(context.Background())
	defer endGrace()
	done := make(chan error, 1)
	go func() { done <- ts.s.Shutdown(ctx, 1500*time.Millisecond, 7*time.Second) }()

	want := ServerRestartingMessage{ReconnectIn: 1500 * time.Millisecond, TryFor: 7 * time.Second}
	for _, c := range []*Client{a, b} {
		if got, _ := recvUntilRestarting(t, c); got != want {
			t.Fatalf("Restarting = %+v, want %+v", got, want)
		}
	}
	// The mesh peer may get PeerPresent records before the frame.
	for i := 0; ; i++ {
		if i == 100 {
			t.Fatal("mesh peer: no Restarting frame")
		}
		if got, ok := recvMsg(t, mesh).(ServerRestartingMessage); ok {
			if got != want {
				t.Fatalf("mesh peer: Restarting = %+v, want %+v", got, want)
			}
			break
		}
	}

	// Relaying goes on during the grace period.
	if err := a.Send(b.PublicKey(), []byte("during grace")); err != nil {
		t.Fatal(err)
	}
	if p := recvPacket(t, b); string(p.Data) != "during grace" || p.Source != a.PublicKey() {
		t.Fatalf("got %q from %v", p.Data, p.Source.ShortString())
	}

	// New connections are refused.
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := NewClient(key.NewNode(), nc, bufioRW(nc), t.Logf); err == nil {
		t.Fatal("handshake succeeded during shutdown")
	}

	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v before the grace period ended", err)
	default:
	}
	endGrace()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := b.Recv(); err == nil {
		t.Fatal("connection open after Shutdown")
	}
	if err := ts.s.Shutdown(context.Background(), 0, 0); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("second Shutdown = %v, want ErrServerClosed", err)
	}
}

func TestShutdownFlushesQueuedPackets(t *testing.T) {
	s := NewServer(key.NewNode(), t.Logf)
	defer s.Close()
	// b's pipe holds little, so packets for b wait in its send queue
	// while b does not read.
	a, waitA := pipeClientSize(t, s, 64<<10)
	b, waitB := pipeClientSize(t, s, 1024)

	const n = 20 // below the queue depth: nothing is evicted
	pkt := make([]byte, 1000)
	for i := range n {
		pkt[0] = byte(i)
		if err := a.Send(b.PublicKey(), pkt); err != nil {
			t.Fatal(err)
		}
	}
	// a's reader handles frames in order: once the pong is back, every
	// packet has been queued for b.
	if err := a.SendPing([8]byte{1}); err != nil {
		t.Fatal(err)
	}
	for {
		m := recvMsg(t, a)
		if _, ok := m.(PongMessage); ok {
			break
		}
	}

	// A grace period that is already over: no relaying, but the flush.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx, 0, 3*time.Second) }()

	got := 0
	restarting := false
	var endErr error
	for {
		b.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		m, err := b.Recv()
		if err != nil {
			endErr = err
			break
		}
		switch m := m.(type) {
		case ReceivedPacket:
			if int(m.Data[0]) != got {
				t.Fatalf("packet %d arrived as number %d", m.Data[0], got)
			}
			got++
		case ServerRestartingMessage:
			restarting = true
			if m.TryFor != 3*time.Second {
				t.Fatalf("TryFor = %v", m.TryFor)
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitA()
	waitB()
	if got != n || !restarting {
		t.Fatalf("b got %d of %d packets, Restarting %v, then %v", got, n, restarting, endErr)
	}
	if d := s.metrics.dropReason[dropGoneDisconnected].Value(); d != 0 {
		t.Fatalf("%d packets dropped", d)
	}
	checkNoLeaks(t)
}

// TestShutdownReachesHandshakes checks that a client whose handshake
// completes after Shutdown began still gets the frame, and that Close
// during the grace period ends Shutdown.
func TestShutdownReachesHandshakes(t *testing.T) {
	s := NewServer(key.NewNode(), t.Logf)
	cc, sc := derptest.Pipe()
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		s.Accept(context.Background(), sc, bufioRW(sc), "127.0.0.1:9")
	}()
	// Wait until Accept has admitted the connection, then start the
	// shutdown before the client speaks.
	waitFor(t, "admission", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns) == 1
	})
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background(), time.Second, time.Second) }()
	waitFor(t, "shutdown start", func() bool { return s.restarting.Load() != nil })

	c, err := NewClient(key.NewNode(), cc, bufioRW(cc), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	recvMsg(t, c) // ServerInfo
	if m, _ := recvUntilRestarting(t, c); m.ReconnectIn != time.Second {
		t.Fatalf("ReconnectIn = %v", m.ReconnectIn)
	}
	s.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	<-accepted
	checkNoLeaks(t)
}

func TestShutdownWithoutClients(t *testing.T) {
	s := NewServer(key.NewNode(), t.Logf)
	// No connection: Shutdown does not wait for the grace period.
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if err := s.Shutdown(ctx, time.Second, time.Second); err != nil {
		t.Fatal(err)
	}
	if !s.isClosed() {
		t.Fatal("server not closed")
	}
	checkNoLeaks(t)
}
