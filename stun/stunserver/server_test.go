package stunserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openderp/openderp/stun"
	"github.com/openderp/openderp/stun/stunserver"
)

// startServer serves a new loopback socket of the given network ("udp4"
// or "udp6") and returns the server and its address. The server stops at
// the end of the test, and the test fails if Serve returns an error.
func startServer(t *testing.T, network string) (*stunserver.Server, netip.AddrPort) {
	t.Helper()
	host := "127.0.0.1"
	if network == "udp6" {
		host = "::1"
	}
	conn, err := net.ListenUDP(network, &net.UDPAddr{IP: net.ParseIP(host)})
	if err != nil {
		if network == "udp6" {
			t.Skipf("IPv6 loopback unavailable: %v", err)
		}
		t.Fatal(err)
	}
	s := stunserver.New(t.Logf)
	// Datagrams that arrive before Serve enables destination reporting
	// carry none and are counted in counter_no_local_addr; wait until the
	// socket is set up so that tests see exact counts.
	serving := make(chan struct{})
	s.SetServing(func() { close(serving) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, conn) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve returned %v after cancel; want nil", err)
		}
	})
	select {
	case <-serving:
	case err := <-done:
		done <- err // for the cleanup
		t.Fatalf("Serve = %v before serving", err)
	}
	return s, conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// dial returns a client socket connected to addr, closed at test end.
func dial(t *testing.T, addr netip.AddrPort) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// exchange sends req and returns the parsed reply, failing the test if
// none arrives within a few seconds.
func exchange(t *testing.T, c *net.UDPConn, req []byte) (stun.TxID, netip.AddrPort) {
	t.Helper()
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("reading STUN reply: %v", err)
	}
	tx, addr, err := stun.ParseResponse(buf[:n])
	if err != nil {
		t.Fatalf("ParseResponse(%x): %v", buf[:n], err)
	}
	return tx, addr
}

func TestServeLoopback(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			s, addr := startServer(t, network)
			c := dial(t, addr)
			self := c.LocalAddr().(*net.UDPAddr).AddrPort()

			tx := stun.NewTxID()
			gotTx, got := exchange(t, c, stun.Request(tx))
			if gotTx != tx || got != self {
				t.Fatalf("reply = %v, %v; want %v, %v", gotTx, got, tx, self)
			}

			// An ordinary RFC 5389 client's request: no SOFTWARE, no
			// FINGERPRINT. See docs/compat.md#stun-generic-clients.
			tx2 := stun.NewTxID()
			generic := append([]byte{0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42}, tx2[:]...)
			if gotTx, got := exchange(t, c, generic); gotTx != tx2 || got != self {
				t.Fatalf("reply to generic request = %v, %v; want %v, %v", gotTx, got, tx2, self)
			}

			want := stunserver.Metrics{Success: 2}
			if network == "udp4" {
				want.IPv4 = 2
			} else {
				want.IPv6 = 2
			}
			m := settledMetrics(s, func(m stunserver.Metrics) bool { return m == want })
			if m != want {
				t.Fatalf("Metrics() = %+v; want %+v", m, want)
			}
		})
	}
}

// junk returns datagrams that must all be dropped.
func junk(i int) []byte {
	tx := stun.TxID{byte(i), byte(i >> 8)}
	req := stun.Request(tx)
	switch i % 8 {
	case 0:
		return []byte("GET / HTTP/1.1\r\n\r\n")
	case 1:
		return req[:stun.HeaderLen-1]
	case 2:
		req[len(req)-1] ^= 0xFF // bad fingerprint
		return req
	case 3:
		return stun.Response(tx, netip.MustParseAddrPort("1.2.3.4:5"))
	case 4:
		req[4] = 0 // bad cookie
		return req
	case 5:
		return req[:len(req)-3] // truncated attribute
	case 6:
		return nil // empty datagram
	default:
		return append(req, 0x80, 0x22, 0, 0) // FINGERPRINT not last
	}
}

func TestJunkFlood(t *testing.T) {
	s, addr := startServer(t, "udp4")
	c := dial(t, addr)
	const rounds, perRound = 20, 40
	sent := 0
	for r := range rounds {
		// Junk in bounded bursts, then a valid request: its answer must be
		// the next datagram we get, so no junk was answered, and since the
		// server reads in order, every junk datagram before it was seen.
		for j := range perRound {
			if _, err := c.Write(junk(r*perRound + j)); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		tx := stun.NewTxID()
		if gotTx, _ := exchange(t, c, stun.Request(tx)); gotTx != tx {
			t.Fatalf("round %d: reply tx %v; want %v", r, gotTx, tx)
		}
	}
	m := settledMetrics(s, func(m stunserver.Metrics) bool { return m.Success == rounds })
	if m.NotSTUN != uint64(sent) || m.Success != rounds || m.IPv4 != rounds {
		t.Fatalf("Metrics() = %+v; want NotSTUN %d, Success and IPv4 %d", m, sent, rounds)
	}
}

func TestServeStopsOnCancel(t *testing.T) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- stunserver.New(nil).Serve(ctx, conn) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v; want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := conn.WriteToUDPAddrPort([]byte("x"), conn.LocalAddr().(*net.UDPAddr).AddrPort()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write on served conn after Serve returned: %v; want net.ErrClosed", err)
	}
}

func TestServeCancelledBeforeStart(t *testing.T) {
	fc := newFakeConn()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := stunserver.New(nil).Serve(ctx, fc); err != nil {
		t.Fatalf("Serve(cancelled ctx) = %v; want nil", err)
	}
}

func TestServeConnClosedElsewhere(t *testing.T) {
	fc := newFakeConn()
	fc.Close()
	err := stunserver.New(nil).Serve(context.Background(), fc)
	if !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve(closed conn) = %v; want net.ErrClosed", err)
	}
}

func TestReadAndWriteErrors(t *testing.T) {
	fc := newFakeConn()
	fc.in <- datagram{err: errors.New("transient")}
	fc.failWrites = true
	var logs strings.Builder
	var mu sync.Mutex
	s := stunserver.New(func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		logs.WriteString(format)
	})
	s.SetBackoff(time.Millisecond)
	src := netip.MustParseAddrPort("[2001:db8::1]:9")
	fc.in <- datagram{b: stun.Request(stun.NewTxID()), src: src}
	fc.in <- datagram{err: net.ErrClosed}
	if err := s.Serve(context.Background(), fc); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve = %v; want net.ErrClosed", err)
	}
	want := stunserver.Metrics{ReadErrors: 1, WriteErrors: 1, IPv6: 1}
	if m := s.Metrics(); m != want {
		t.Fatalf("Metrics() = %+v; want %+v", m, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "STUN ReadFrom") {
		t.Fatalf("logs = %q; want a STUN ReadFrom line", logs.String())
	}
}

// See docs/compat.md#stun-ipv4-mapped.
func TestIPv4MappedSenderGetsIPv4Answer(t *testing.T) {
	fc := newFakeConn()
	src := netip.MustParseAddrPort("[::ffff:192.0.2.1]:32853")
	tx := stun.NewTxID()
	fc.in <- datagram{b: stun.Request(tx), src: src}
	fc.in <- datagram{err: net.ErrClosed}
	s := stunserver.New(nil)
	s.Serve(context.Background(), fc)
	if len(fc.out) != 1 {
		t.Fatalf("sent %d datagrams; want 1", len(fc.out))
	}
	if fc.out[0].src != src {
		t.Fatalf("reply sent to %v; want %v", fc.out[0].src, src)
	}
	if want := stun.Response(tx, netip.MustParseAddrPort("192.0.2.1:32853")); string(fc.out[0].b) != string(want) {
		t.Fatalf("reply = %x; want %x", fc.out[0].b, want)
	}
	if m := s.Metrics(); m.IPv4 != 1 || m.IPv6 != 0 {
		t.Fatalf("Metrics() = %+v; want IPv4 1", m)
	}
}

func TestExpVar(t *testing.T) {
	s, addr := startServer(t, "udp4")
	c := dial(t, addr)
	c.Write([]byte("junk"))
	exchange(t, c, stun.Request(stun.NewTxID()))

	// The server counts a success after its write returns, which may be
	// after the client has the reply: wait (bounded) for the count.
	var got map[string]any
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		got = nil
		if err := json.Unmarshal([]byte(s.ExpVar().String()), &got); err != nil {
			t.Fatalf("ExpVar JSON %s: %v", s.ExpVar().String(), err)
		}
		if r, _ := got["counter_requests"].(map[string]any); r["success"] == 1.0 || time.Now().After(deadline) {
			break
		}
	}
	want := map[string]any{
		"counter_requests":              map[string]any{"read_error": 0.0, "not_stun": 1.0, "write_error": 0.0, "success": 1.0},
		"counter_addrfamily":            map[string]any{"ipv4": 1.0, "ipv6": 0.0},
		"counter_no_local_addr":         0.0,
		"counter_amplification_limited": 0.0,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ExpVar = %v; want %v", got, want)
	}
}

func TestListenAndServe(t *testing.T) {
	addrs := make(chan string, 1)
	s := stunserver.New(func(format string, args ...any) {
		if strings.HasPrefix(format, "STUN server listening on") {
			addrs <- args[0].(net.Addr).String()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx, "127.0.0.1:0") }()
	var addr string
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("ListenAndServe = %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("ListenAndServe did not start")
	}
	c := dial(t, netip.MustParseAddrPort(addr))
	tx := stun.NewTxID()
	if gotTx, _ := exchange(t, c, stun.Request(tx)); gotTx != tx {
		t.Fatalf("reply tx %v; want %v", gotTx, tx)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ListenAndServe after cancel = %v; want nil", err)
	}
}

func TestListenAndServeBadAddr(t *testing.T) {
	for _, addr := range []string{"no-port", "127.0.0.1:99999", "192.0.2.1:0"} {
		if err := stunserver.New(nil).ListenAndServe(context.Background(), addr); err == nil {
			t.Errorf("ListenAndServe(%q) = nil; want an error", addr)
		}
	}
}

func TestAnswerDoesNotAllocate(t *testing.T) {
	s := stunserver.New(nil)
	req := stun.Request(stun.NewTxID())
	src := netip.MustParseAddrPort("[2001:db8::1]:9")
	junk := []byte("junk")
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() {
		s.Answer(buf[:0], req, src)
		s.Answer(buf[:0], junk, src)
	}); n != 0 {
		t.Fatalf("Answer allocates %v times per run; want 0", n)
	}
}

// datagram is one read result of fakeConn, or one write it recorded.
type datagram struct {
	b   []byte
	src netip.AddrPort
	err error
}

// fakeConn is an in-memory PacketConn: reads come from in, writes are
// recorded in out. Reads and writes happen on Serve's goroutine only;
// tests look at out after Serve returns.
type fakeConn struct {
	in         chan datagram
	out        []datagram
	failWrites bool

	closeOnce sync.Once
	closed    chan struct{}
}

func newFakeConn() *fakeConn {
	return &fakeConn{in: make(chan datagram, 16), closed: make(chan struct{})}
}

func (c *fakeConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	select {
	case d := <-c.in:
		if d.err != nil {
			return 0, netip.AddrPort{}, d.err
		}
		return copy(b, d.b), d.src, nil
	case <-c.closed:
		return 0, netip.AddrPort{}, net.ErrClosed
	}
}

func (c *fakeConn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if c.failWrites {
		return 0, errors.New("write failed")
	}
	c.out = append(c.out, datagram{b: append([]byte(nil), b...), src: addr})
	return len(b), nil
}

func (c *fakeConn) LocalAddr() net.Addr { return &net.UDPAddr{} }

func (c *fakeConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

// settledMetrics returns the server's metrics once ok holds, or after five
// seconds: the server counts a success after its write returns, which can
// be after the client has read the reply.
func settledMetrics(s *stunserver.Server, ok func(stunserver.Metrics) bool) stunserver.Metrics {
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := s.Metrics()
		if ok(m) || time.Now().After(deadline) {
			return m
		}
		time.Sleep(time.Millisecond)
	}
}
