package derphttp_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"expvar"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/key"
)

// limitedServer is a DERP server behind a LimitListener on 127.0.0.1, as
// cmd/derper wires it.
type limitedServer struct {
	s   *derp.Server
	ll  *derphttp.LimitListener
	hs  *http.Server
	url string
	ca  *testCA // nil for plain HTTP
}

// newLimitedServer starts one; extra, if given, mounts more handlers on its
// mux besides /derp and /generate_204.
func newLimitedServer(t testing.TB, lim derphttp.Limits, ca *testCA, extra ...func(*http.ServeMux)) *limitedServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ls := &limitedServer{s: derp.NewServer(key.NewNode(), nil), ca: ca}
	if ca != nil {
		leaf := ca.leaf
		ls.ll = derphttp.NewTLSLimitListener(ln, lim, derphttp.TLSOptions{Config: &tls.Config{
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &leaf, nil },
			NextProtos:     []string{"http/1.1"},
		}})
	} else {
		ls.ll = derphttp.NewLimitListener(ln, lim)
	}
	mux := http.NewServeMux()
	mux.Handle("/derp", derphttp.Handler(ls.s))
	mux.HandleFunc("/generate_204", derphttp.ServeNoContent)
	for _, f := range extra {
		f(mux)
	}
	ls.hs = &http.Server{
		Handler:           ls.ll.Handler(mux),
		ConnContext:       ls.ll.ConnContext,
		MaxHeaderBytes:    16 << 10,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0), // the hostile tests make it noisy
	}
	scheme := "http"
	served := make(chan struct{})
	if ca != nil {
		scheme = "https"
	}
	go func() { defer close(served); ls.hs.Serve(ls.ll) }()
	ls.url = scheme + "://" + ln.Addr().String() + "/derp"
	t.Cleanup(func() {
		ls.s.Close()
		ls.hs.Close()
		ls.ll.Close()
		<-served
	})
	return ls
}

func (ls *limitedServer) addr() string {
	return strings.TrimSuffix(strings.SplitN(ls.url, "//", 2)[1], "/derp")
}

// counter reads one of the listener's counters; for counter_rejected, name
// is "counter_rejected/<reason>".
func (ls *limitedServer) counter(name string) string {
	m := ls.ll.ExpVar()
	if base, label, ok := strings.Cut(name, "/"); ok {
		return m.Get(base).(*expvar.Map).Get(label).String()
	}
	return m.Get(name).String()
}

// probePair is two honest clients of a server; exchange checks that they
// still relay to each other.
type probePair struct {
	a, b *derphttp.Client
	seq  int
}

func newProbePair(t testing.TB, url string, ca *testCA) *probePair {
	t.Helper()
	p := &probePair{}
	for _, c := range []**derphttp.Client{&p.a, &p.b} {
		cl, err := derphttp.NewClient(key.NewNode(), url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ca != nil {
			cl.TLSConfig = &tls.Config{RootCAs: ca.pool}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = cl.Connect(ctx)
		cancel()
		if err != nil {
			t.Fatalf("probe client: %v", err)
		}
		waitServerInfo(t, cl)
		t.Cleanup(func() { cl.Close() })
		*c = cl
	}
	return p
}

// exchange sends one numbered packet each way and waits (at most 10 s)
// for both. Packets are checked by content, so a lost or misdelivered one
// fails the test.
func (p *probePair) exchange(t testing.TB) {
	t.Helper()
	p.seq++
	errc := make(chan error, 2)
	for _, d := range [][2]*derphttp.Client{{p.a, p.b}, {p.b, p.a}} {
		from, to := d[0], d[1]
		want := fmt.Sprintf("probe %d from %v", p.seq, from.SelfPublicKey().ShortString())
		if err := from.Send(to.SelfPublicKey(), []byte(want)); err != nil {
			t.Fatalf("probe send: %v", err)
		}
		go func() {
			for range 100 {
				m, err := to.Recv()
				if err != nil {
					errc <- err
					return
				}
				if pk, ok := m.(derp.ReceivedPacket); ok {
					if string(pk.Data) != want || pk.Source != from.SelfPublicKey() {
						errc <- fmt.Errorf("probe got %q from %v, want %q", pk.Data, pk.Source.ShortString(), want)
					} else {
						errc <- nil
					}
					return
				}
			}
			errc <- fmt.Errorf("no probe packet in 100 messages")
		}()
	}
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for range 2 {
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("probe pair: %v", err)
			}
		case <-timeout.C:
			t.Fatal("probe pair: no packet within 10s")
		}
	}
}

// dialFrom opens a TCP connection to addr from the loopback address src,
// so that per-IP limits see another client than the probes (127.0.0.1).
func dialFrom(t testing.TB, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitClosed waits (at most max) for the server to close c, and returns
// how long that took.
func waitClosed(t testing.TB, c net.Conn, max time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(max))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after %v", max)
	}
	return time.Since(start)
}

// TestHandshakeTimeout covers the slowloris attacks: a stalled HTTP
// request, and a connection that upgrades and then never sends its
// ClientInfo, are both closed when the handshake deadline passes, counted,
// while a probe pair keeps relaying.
func TestHandshakeTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	tests := []struct {
		name string
		send string
	}{
		{"first byte only", "G"},
		{"partial request headers", "GET /derp HTTP/1.1\r\nHost: x\r\nUpgrade: DERP\r\n"},
		{"upgraded, no ClientInfo", "GET /derp HTTP/1.1\r\nHost: x\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n\r\n"},
		{"upgraded, half a ClientInfo", "GET /derp HTTP/1.1\r\nHost: x\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n\r\n\x02\x00\x00\x00\x50abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls := newLimitedServer(t, derphttp.Limits{HandshakeTimeout: timeout}, nil)
			probes := newProbePair(t, ls.url, nil)
			probes.exchange(t)
			c := dialFrom(t, "127.0.0.2", ls.addr())
			io.WriteString(c, tt.send)
			took := waitClosed(t, c, 10*time.Second)
			t.Logf("closed after %v", took.Round(time.Millisecond))
			if took < timeout/2 {
				t.Errorf("closed after %v, before the %v deadline", took, timeout)
			}
			if got := ls.counter("counter_handshake_timeouts"); got != "1" {
				t.Errorf("handshake timeouts = %s, want 1", got)
			}
			probes.exchange(t)
			waitFor(t, "limits to settle", func() bool { o, p := ls.ll.Counts(); return o == 2 && p == 0 })
		})
	}
}

// TestHonestConnectionsLeavePending checks that finishing the DERP
// handshake, or making an ordinary HTTP request, ends a connection's
// pending state, so the handshake deadline cannot cut it.
func TestHonestConnectionsLeavePending(t *testing.T) {
	ls := newLimitedServer(t, derphttp.Limits{HandshakeTimeout: time.Minute, MaxPending: 100}, nil)
	probes := newProbePair(t, ls.url, nil)
	probes.exchange(t)
	if o, p := ls.ll.Counts(); o != 2 || p != 0 {
		t.Fatalf("after two handshakes: open %d, pending %d; want 2, 0", o, p)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(strings.Replace(ls.url, "/derp", "/generate_204", 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if o, p := ls.ll.Counts(); o != 3 || p != 0 {
		t.Fatalf("with an idle keep-alive HTTP connection: open %d, pending %d; want 3, 0", o, p)
	}
	if got := ls.counter("counter_handshakes_done"); got != "3" {
		t.Errorf("handshakes done = %s, want 3", got)
	}
}

// TestAdmissionLimits fills each limit from 127.0.0.2 and checks that the
// next connection is refused at once and counted, and that the limit frees
// up when the attacker leaves.
func TestAdmissionLimits(t *testing.T) {
	const n = 5
	tests := []struct {
		name       string
		lim        derphttp.Limits
		reason     string
		probeFirst bool // per-IP limits leave other addresses alone
	}{
		{"max conns", derphttp.Limits{MaxConns: n + 2}, derphttp.RejectMaxConns, true},
		{"max pending", derphttp.Limits{MaxPending: n}, derphttp.RejectMaxPending, true},
		{"max conns per IP", derphttp.Limits{MaxConnsPerIP: n}, derphttp.RejectMaxConnsPerIP, true},
		{"max pending per IP", derphttp.Limits{MaxPendingPerIP: n}, derphttp.RejectMaxPendingPerIP, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls := newLimitedServer(t, tt.lim, nil)
			probes := newProbePair(t, ls.url, nil)
			var held []net.Conn
			for range n {
				c := dialFrom(t, "127.0.0.2", ls.addr())
				io.WriteString(c, "GET /derp HTTP/1.1\r\n") // and stall
				held = append(held, c)
			}
			waitFor(t, "attackers admitted", func() bool { o, _ := ls.ll.Counts(); return o == n+2 })
			extra := dialFrom(t, "127.0.0.2", ls.addr())
			waitClosed(t, extra, 10*time.Second)
			if got := ls.counter("counter_rejected/" + tt.reason); got != "1" {
				t.Fatalf("rejected %s = %s, want 1", tt.reason, got)
			}
			probes.exchange(t)
			for _, c := range held {
				c.Close()
			}
			waitFor(t, "attackers gone", func() bool { o, p := ls.ll.Counts(); return o == 2 && p == 0 })
			late := newProbePair(t, ls.url, nil)
			late.exchange(t)
		})
	}
}

// TestLimitListenerClose checks that closing the listener closes
// connections still waiting for their first byte and returns.
func TestLimitListenerClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ll := derphttp.NewLimitListener(ln, derphttp.Limits{})
	var conns []net.Conn
	for range 10 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	waitFor(t, "connections admitted", func() bool { o, _ := ll.Counts(); return o == 10 })
	ll.Close()
	for _, c := range conns {
		waitClosed(t, c, 10*time.Second)
	}
	if o, p := ll.Counts(); o != 0 || p != 0 {
		t.Fatalf("after Close: open %d, pending %d", o, p)
	}
	if _, err := ll.Accept(); err == nil {
		t.Fatal("Accept after Close succeeded")
	}
}

// TestOversizedHeaders checks the header size limit before the upgrade.
func TestOversizedHeaders(t *testing.T) {
	ls := newLimitedServer(t, derphttp.Limits{HandshakeTimeout: 10 * time.Second}, nil)
	c := dialFrom(t, "127.0.0.2", ls.addr())
	go func() {
		io.WriteString(c, "GET /derp HTTP/1.1\r\nHost: x\r\nX-Junk: "+strings.Repeat("a", 64<<10)+"\r\n\r\n")
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", resp.StatusCode)
	}
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var _ sync.Mutex
