package derp

import (
	"bytes"
	"context"
	"fmt"
	"github.com/openderp/openderp/internal/leakcheck"
	"sync"
	"testing"
	"time"

	"github.com/openderp/openderp/key"
)

// TestMain fails the package if any goroutine running this package's code
// outlives the tests, so every test checks for leaks after Server.Close.
func TestMain(m *testing.M) {
	leakcheck.Main(m, "openderp/derp.")
}

func TestRelayBetweenClients(t *testing.T) {
	ts := newTestServer(t)
	a, b := ts.dial(t), ts.dial(t)
	for _, size := range []int{0, 1, 100, 1280, MaxPacketSize} {
		pkt := bytes.Repeat([]byte{byte(size)}, size)
		if err := a.Send(b.PublicKey(), pkt); err != nil {
			t.Fatal(err)
		}
		got := recvPacket(t, b)
		if got.Source != a.PublicKey() || !bytes.Equal(got.Data, pkt) {
			t.Fatalf("size %d: got %d bytes from %v", size, len(got.Data), got.Source)
		}
	}
	if err := a.Send(b.PublicKey(), make([]byte, MaxPacketSize+1)); err != ErrPacketTooLarge {
		t.Fatalf("oversize send: %v, want ErrPacketTooLarge", err)
	}
	if a.ServerPublicKey() != ts.s.PublicKey() {
		t.Fatal("client learned the wrong server key")
	}
}

func TestManyClients(t *testing.T) {
	ts := newTestServer(t)
	const n = 200
	clients := make([]*Client, n)
	for i := range clients {
		clients[i] = ts.dial(t)
	}
	// Each client sends to the next; every one must get exactly its packet.
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, c := range clients {
		dst := clients[(i+1)%n]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Send(dst.PublicKey(), []byte(fmt.Sprintf("hello %d", i))); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, c := range clients {
		got := recvPacket(t, c)
		from := (i + n - 1) % n
		if want := fmt.Sprintf("hello %d", from); string(got.Data) != want || got.Source != clients[from].PublicKey() {
			t.Fatalf("client %d got %q from %v, want %q", i, got.Data, got.Source, want)
		}
	}
	if got := ts.s.metrics.curConns.Value(); got != n {
		t.Fatalf("current_connections = %d, want %d", got, n)
	}
	if err := ts.s.ConsistencyCheck(); err != nil {
		t.Fatal(err)
	}
}

func TestServerCloseEndsClients(t *testing.T) {
	ts := newTestServer(t)
	a := ts.dial(t)
	ts.close()
	if _, err := a.Recv(); err == nil {
		t.Fatal("Recv after server close succeeded")
	}
	// The error is sticky.
	_, err1 := a.Recv()
	_, err2 := a.Recv()
	if err1 == nil || err1 != err2 {
		t.Fatalf("errors not sticky: %v, %v", err1, err2)
	}
	checkNoLeaks(t)
	if err := ts.s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestPingPong(t *testing.T) {
	ts := newTestServer(t)
	a := ts.dial(t)
	data := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	if err := a.SendPing(data); err != nil {
		t.Fatal(err)
	}
	if m := recvMsg(t, a); m != PongMessage(data) {
		t.Fatalf("got %#v, want pong", m)
	}
	waitFor(t, "sent_pong", func() bool { return ts.s.metrics.sentPong.Value() == 1 })
	if ts.s.metrics.gotPing.Value() != 1 {
		t.Fatal("got_ping not counted")
	}
}

func TestPeerGoneDisconnected(t *testing.T) {
	ts := newTestServer(t)
	a, b := ts.dial(t), ts.dial(t)
	if err := a.Send(b.PublicKey(), []byte("hi")); err != nil {
		t.Fatal(err)
	}
	recvPacket(t, b)
	waitFor(t, "subscription", func() bool {
		ts.s.mu.Lock()
		defer ts.s.mu.Unlock()
		return len(ts.s.goneSubs[a.PublicKey()]) == 1
	})
	a.Close()
	m := recvMsg(t, b)
	want := PeerGoneMessage{Peer: a.PublicKey(), Reason: PeerGoneReasonDisconnected}
	if m != want {
		t.Fatalf("got %#v, want %#v", m, want)
	}
}

func TestPeerGoneNotHere(t *testing.T) {
	ts := newTestServer(t)
	a := ts.dial(t)
	nobody := key.NewNode().Public()
	disco := append([]byte(discoMagic), make([]byte, KeyLen+NonceLen)...)
	if err := a.Send(nobody, []byte("not disco")); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(nobody, disco); err != nil {
		t.Fatal(err)
	}
	m := recvMsg(t, a)
	want := PeerGoneMessage{Peer: nobody, Reason: PeerGoneReasonNotHere}
	if m != want {
		t.Fatalf("got %#v, want %#v", m, want)
	}
	waitFor(t, "drop counters", func() bool {
		return ts.s.metrics.dropReason[dropUnknownDest].Value() == 2 && ts.s.metrics.droppedDisco.Value() == 1
	})
}

func TestAcceptContextCancel(t *testing.T) {
	s := NewServer(key.NewNode(), t.Logf)
	defer s.Close()
	cc, sc := derptestPipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Accept(ctx, sc, bufioRW(sc), "127.0.0.1:9")
	}()
	c, err := NewClient(key.NewNode(), cc, bufioRW(cc), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Recv(); err != nil { // ServerInfo: registered
		t.Fatal(err)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Accept ignored context cancellation")
	}
	if _, err := c.Recv(); err == nil {
		t.Fatal("connection still open after cancel")
	}
}

func TestKeepAlives(t *testing.T) {
	ts := newTestServer(t)
	ts.s.keepAliveForTest = 20 * time.Millisecond
	c := ts.dial(t)
	for range 3 {
		if m := recvMsg(t, c); m != (KeepAliveMessage{}) {
			t.Fatalf("got %#v, want keep-alive", m)
		}
	}
}
