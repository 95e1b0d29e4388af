package derphttp_test

import (
	"bufio"
	"crypto/tls"
	"expvar"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/key"
)

// The hostile-input cases that need many connections open them from a
// child process (this test binary, re-run as TestHoldConnsChild), so that
// the server's memory is measured alone and each process stays within its
// own descriptor limit.

// Modes of the connections a child holds.
const (
	holdSilent    = "silent"     // TCP connected, nothing sent
	holdFirstByte = "first-byte" // one byte of an HTTP request, then nothing
	holdTLS       = "tls"        // TLS handshake completed, then nothing
	holdDERP      = "derp"       // DERP handshake completed, then idle
	holdDERPTLS   = "derp-tls"   // DERP handshake completed over TLS, then idle
)

// TestHoldConnsChild is not a test: run by holdConns with
// OPENDERP_HOLD_ADDR set, it opens the connections, prints "ready" and
// keeps them until its standard input closes.
func TestHoldConnsChild(t *testing.T) {
	addr := os.Getenv("OPENDERP_HOLD_ADDR")
	if addr == "" {
		t.Skip("helper process for the hostile tests")
	}
	n, _ := strconv.Atoi(os.Getenv("OPENDERP_HOLD_N"))
	mode := os.Getenv("OPENDERP_HOLD_MODE")
	raiseFDLimit(t, n+100)
	// Spread the connections over 127.0.0.2-127.0.0.255 so that no single
	// address exhausts the ephemeral ports.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		src := net.IPv4(127, 0, byte(1+i/60000), byte(2+i%250))
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 10 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			fmt.Printf("dial %d: %v\n", i, err)
			return
		}
		switch mode {
		case holdFirstByte:
			io.WriteString(c, "G")
		case holdTLS:
			tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
			if err := tc.Handshake(); err != nil {
				fmt.Printf("TLS %d: %v\n", i, err)
				return
			}
			c = tc
		case holdDERP, holdDERPTLS:
			if mode == holdDERPTLS {
				c = tls.Client(c, &tls.Config{InsecureSkipVerify: true})
			}
			if err := holdDERPHandshake(c); err != nil {
				fmt.Printf("DERP %d: %v\n", i, err)
				return
			}
		}
		conns = append(conns, c)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
}

// holdConns makes a child process open n connections of mode to addr and
// hold them; it returns once they are all open. The child closes them
// when the test ends or release is called.
func holdConns(t *testing.T, addr string, n int, mode string) (release func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHoldConnsChild$", "-test.v")
	cmd.Env = append(os.Environ(), "OPENDERP_HOLD_ADDR="+addr, "OPENDERP_HOLD_N="+strconv.Itoa(n), "OPENDERP_HOLD_MODE="+mode)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := false
	release = func() {
		if done {
			return
		}
		done = true
		stdin.Close()
		cmd.Wait()
	}
	t.Cleanup(release)
	sc := bufio.NewScanner(stdout)
	var out []string
	for sc.Scan() {
		line := sc.Text()
		if line == "ready" {
			go io.Copy(io.Discard, stdout)
			return release
		}
		out = append(out, line)
	}
	release()
	t.Fatalf("child did not open its connections:\n%s", strings.Join(out, "\n"))
	return nil
}

// raiseFDLimit raises the soft descriptor limit to at least n, or skips.
func raiseFDLimit(t testing.TB, n int) {
	t.Helper()
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	if r.Cur >= uint64(n) {
		return
	}
	if r.Max < uint64(n) {
		t.Skipf("descriptor limit %d < %d", r.Max, n)
	}
	r.Cur = uint64(n)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
}

// memUse returns the bytes of heap and goroutine stacks in use after a
// collection, and the number of goroutines.
func memUse() (bytes uint64, goroutines int) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse, runtime.NumGoroutine()
}

// stallCase measures the server's memory per held connection.
type stallCase struct {
	name    string
	limited bool // behind a LimitListener (else bare net/http)
	tls     bool
	mode    string
	max     float64 // KiB per connection the case must stay within; 0: just report
}

// TestStalledConnMemory measures what a stalled, not-yet-registered
// connection costs the server, at 2,000 of them: silent TCP, one byte of
// request, and completed TLS. The bare net/http rows are the reference's
// structure (its derper serves DERP through net/http the same way) and
// give the figure to compare with: about 24 KiB. The LimitListener rows
// must stay within half of that: a silent connection and one with an
// incomplete request header wait in the poller without net/http (see
// waitRequestHead), a TLS one without crypto/tls's or net/http's buffers.
//
// By default only the LimitListener silent-TCP row runs, with 500
// connections (about a second); OPENDERP_HEAVY_TESTS=1 (make hostile) runs
// the whole table at 2,000 (about 20 s under load).
func TestStalledConnMemory(t *testing.T) {
	n := 500
	if heavy() {
		n = 2000
	}
	raiseFDLimit(t, n+200)
	ca := newTestCA(t)
	cases := []stallCase{
		{"net/http (reference structure), silent TCP", false, false, holdSilent, 0},
		{"LimitListener, silent TCP", true, false, holdSilent, 12},
		{"net/http (reference structure), first byte", false, false, holdFirstByte, 0},
		{"LimitListener, first byte", true, false, holdFirstByte, 12},
		{"net/http (reference structure), TLS done", false, true, holdTLS, 0},
		{"LimitListener, TLS done", true, true, holdTLS, 12},
	}
	if !heavy() {
		cases = cases[1:2]
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var seen func() int
			hs := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: time.Minute, ErrorLog: log.New(io.Discard, "", 0)}
			var l net.Listener = ln
			var ll *derphttp.LimitListener
			switch {
			case tc.limited && tc.tls:
				ll = derphttp.NewTLSLimitListener(ln, derphttp.Limits{HandshakeTimeout: time.Minute},
					derphttp.TLSOptions{Config: &tls.Config{Certificates: []tls.Certificate{ca.leaf}, NextProtos: []string{"http/1.1"}}})
				hs.ConnContext = ll.ConnContext
				l = ll
				seen = func() int { o, _ := ll.Counts(); return o }
			case tc.limited:
				ll = derphttp.NewLimitListener(ln, derphttp.Limits{HandshakeTimeout: time.Minute})
				hs.ConnContext = ll.ConnContext
				l = ll
				seen = func() int { o, _ := ll.Counts(); return o }
			default:
				cs := newConnCounter()
				hs.ConnState = cs.hook
				seen = cs.count
			}
			served := make(chan struct{})
			if tc.tls && !tc.limited {
				leaf := ca.leaf
				hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{leaf}}
				go func() { defer close(served); hs.ServeTLS(l, "", "") }()
			} else {
				go func() { defer close(served); hs.Serve(l) }()
			}
			defer func() {
				hs.Close()
				if ll != nil {
					ll.Close()
				}
				<-served
			}()
			before, g0 := memUse()
			release := holdConns(t, ln.Addr().String(), n, tc.mode)
			waitFor(t, "connections accepted", func() bool { return seen() >= n })
			switch {
			case tc.mode == holdTLS && ll != nil:
				// The child finished its handshakes; wait for the server's
				// side of them.
				waitFor(t, "handshakes done", func() bool {
					n1, _ := strconv.Atoi(ll.ExpVar().Get("counter_tls_handshakes").String())
					return n1 >= n
				})
			case tc.mode == holdTLS:
				waitFor(t, "handshakes parked", func() bool { _, g := memUse(); return g >= g0+n })
			}
			after, g1 := memUse()
			per := float64(int64(after)-int64(before)) / float64(n) / 1024
			t.Logf("%-45s %6.1f KiB/conn, %.2f goroutines/conn (%d stalled)", tc.name, per, float64(g1-g0)/float64(n), n)
			if tc.max > 0 && per > tc.max {
				t.Errorf("%.1f KiB per stalled connection, want <= %.0f", per, tc.max)
			}
			release()
			waitFor(t, "connections gone", func() bool { return seen() == 0 })
		})
	}
}

// heavy reports whether the heavy hostile cases should run at full size
// (OPENDERP_HEAVY_TESTS=1, as make hostile sets).
func heavy() bool {
	v, _ := strconv.ParseBool(os.Getenv("OPENDERP_HEAVY_TESTS"))
	return v
}

// connCounter counts a bare http.Server's open connections.
type connCounter struct {
	ch chan int
}

func newConnCounter() *connCounter {
	c := &connCounter{ch: make(chan int, 1)}
	c.ch <- 0
	return c
}

func (c *connCounter) hook(_ net.Conn, st http.ConnState) {
	n := <-c.ch
	switch st {
	case http.StateNew:
		n++
	case http.StateClosed, http.StateHijacked:
		n--
	}
	c.ch <- n
}

func (c *connCounter) count() int {
	n := <-c.ch
	c.ch <- n
	return n
}

// TestHostileManyConns holds many connections that never finish the
// handshake (idle TCP; TLS done then silent) against a TLS or plain
// server, while a probe pair relays. Memory and goroutines per held
// connection are logged and bounded, and everything is released after.
// By default 500 idle and 100 TLS connections (a few seconds);
// OPENDERP_HEAVY_TESTS=1 runs the 10,000 and 2,000.
func TestHostileManyConns(t *testing.T) {
	idle, stalls := 500, 100
	if heavy() {
		idle, stalls = 10000, 2000
	}
	ca := newTestCA(t)
	cases := []struct {
		name   string
		n      int
		mode   string
		tls    bool
		maxKiB float64
	}{
		{"idle TCP", idle, holdSilent, false, 12},
		{"idle TCP to TLS port", idle, holdSilent, true, 12},
		{"TLS done then silent", stalls, holdTLS, true, 64},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raiseFDLimit(t, tc.n+500)
			var c *testCA
			if tc.tls {
				c = ca
			}
			ls := newLimitedServer(t, derphttp.Limits{HandshakeTimeout: 2 * time.Minute, MaxPending: 20000}, c)
			probes := newProbePair(t, ls.url, c)
			probes.exchange(t)
			mem0, g0 := memUse()
			start := time.Now()
			release := holdConns(t, ls.addr(), tc.n, tc.mode)
			waitFor(t, "connections admitted", func() bool { o, _ := ls.ll.Counts(); return o >= tc.n+2 })
			if tc.mode == holdTLS {
				waitFor(t, "handshakes parked", func() bool { _, g := memUse(); return g >= g0+tc.n })
			}
			probes.exchange(t)
			mem1, g1 := memUse()
			per := float64(int64(mem1)-int64(mem0)) / float64(tc.n) / 1024
			t.Logf("%s: %d held in %v; %.1f KiB and %.2f goroutines per connection; probes relayed",
				tc.name, tc.n, time.Since(start).Round(time.Millisecond), per, float64(g1-g0)/float64(tc.n))
			if per > tc.maxKiB {
				t.Errorf("%.1f KiB per held connection, bound %.0f", per, tc.maxKiB)
			}
			if got, _ := strconv.Atoi(ls.counter("counter_accepted")); got < tc.n {
				t.Errorf("counter_accepted = %d, want >= %d", got, tc.n)
			}
			release()
			waitFor(t, "connections released", func() bool { o, p := ls.ll.Counts(); return o == 2 && p == 0 })
			probes.exchange(t)
			mem2, g2 := memUse()
			t.Logf("after release: memory %+d KiB, goroutines %+d", (int64(mem2)-int64(mem0))/1024, g2-g0)
			if g2-g0 > 10 {
				t.Errorf("%d goroutines left after release", g2-g0)
			}
		})
	}
}

// TestHostileRandomBytes sends random bytes to the DERP endpoint: instead
// of an HTTP request, and after a valid upgrade in place of the DERP
// handshake, over plain and TLS connections. Each connection is closed,
// the handshake garbage is counted, and the probes keep relaying.
func TestHostileRandomBytes(t *testing.T) {
	ca := newTestCA(t)
	upgrade := "GET /derp HTTP/1.1\r\nHost: x\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n\r\n"
	cases := []struct {
		name     string
		tls      bool
		prefix   string
		protoErr bool // counted in the derp set's counter_protocol_errors
	}{
		{"instead of the request", false, "", false},
		{"after the upgrade", false, upgrade, true},
		{"TLS, instead of the request", true, "", false},
		{"TLS, after the upgrade", true, upgrade, true},
		{"instead of the TLS handshake", false, "", false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c *testCA
			if tc.tls || i == 4 {
				c = ca
			}
			ls := newLimitedServer(t, derphttp.Limits{HandshakeTimeout: 10 * time.Second}, c)
			probes := newProbePair(t, ls.url, c)
			const conns = 20
			for j := range conns {
				nc := dialFrom(t, "127.0.0.2", ls.addr())
				var w net.Conn = nc
				if tc.tls {
					tc := tls.Client(nc, &tls.Config{InsecureSkipVerify: true})
					if err := tc.Handshake(); err != nil {
						t.Fatal(err)
					}
					w = tc
				}
				junk := make([]byte, 2048)
				for k := range junk {
					junk[k] = byte(k*7 + j*13 + 1)
				}
				junk[0] = 0x02 // a ClientInfo type byte, with a random length
				go w.Write(append([]byte(tc.prefix), junk...))
				waitClosed(t, w, 10*time.Second)
			}
			probes.exchange(t)
			got := ls.s.ExpVar().(*expvar.Map).Get("counter_protocol_errors").String()
			want := "0"
			if tc.protoErr {
				want = strconv.Itoa(conns)
			}
			if got != want {
				t.Errorf("counter_protocol_errors = %s, want %s", got, want)
			}
			waitFor(t, "connections gone", func() bool { o, p := ls.ll.Counts(); return o == 2 && p == 0 })
		})
	}
}

// TestHostileTLSHandshakeFlood opens many TLS handshakes that are abandoned
// at random points (after the ClientHello, mid-record, with a garbage
// record): the probe pair keeps relaying and nothing stays behind.
func TestHostileTLSHandshakeFlood(t *testing.T) {
	ca := newTestCA(t)
	ls := newLimitedServer(t, derphttp.Limits{HandshakeTimeout: 10 * time.Second}, ca)
	probes := newProbePair(t, ls.url, ca)
	_, g0 := memUse()
	n := 300
	if heavy() {
		n = 3000
	}
	for i := range n {
		nc := dialFrom(t, "127.0.0.2", ls.addr())
		switch i % 3 {
		case 0: // a ClientHello's record header only
			nc.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01})
			nc.Close()
		case 1: // full handshake abandoned right after it starts
			tc := tls.Client(nc, &tls.Config{InsecureSkipVerify: true})
			tc.SetDeadline(time.Now().Add(time.Millisecond))
			tc.Handshake()
			nc.Close()
		case 2: // garbage record
			nc.Write([]byte{0x17, 0x03, 0x03, 0x00, 0x05, 1, 2, 3, 4, 5})
			waitClosed(t, nc, 10*time.Second)
		}
		if i%100 == 0 {
			probes.exchange(t)
		}
	}
	probes.exchange(t)
	waitFor(t, "flood drained", func() bool { o, p := ls.ll.Counts(); return o == 2 && p == 0 })
	_, g1 := memUse()
	t.Logf("%d abandoned TLS handshakes; goroutines %+d after", n, g1-g0)
	if g1-g0 > 10 {
		t.Errorf("%d goroutines left", g1-g0)
	}
}

// holdDERPHandshake upgrades c to DERP with a fresh key and completes the
// handshake, leaving the client registered and idle.
func holdDERPHandshake(c net.Conn) error {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "GET /derp HTTP/1.1\r\nHost: derp.test\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n\r\n"); err != nil {
		return err
	}
	br := bufio.NewReaderSize(c, 512)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("upgrade: %s", resp.Status)
	}
	typ, payload, err := derp.ReadFrame(br, 64, make([]byte, 64))
	if err != nil || typ != derp.FrameServerKey || len(payload) < 40 {
		return fmt.Errorf("server key frame: type %v, %d bytes, %v", typ, len(payload), err)
	}
	srv := key.NodePublicFromRaw32([32]byte(payload[8:40]))
	priv := key.NewNode()
	sealed, err := priv.SealTo(srv, []byte(`{"version":2,"CanAckPings":true}`))
	if err != nil {
		return err
	}
	hello := append(priv.Public().AppendTo(nil), sealed...)
	n := len(hello)
	if _, err := c.Write(append([]byte{byte(derp.FrameClientInfo), byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, hello...)); err != nil {
		return err
	}
	if typ, _, err := derp.ReadFrame(br, 256, make([]byte, 256)); err != nil || typ != derp.FrameServerInfo {
		return fmt.Errorf("server info frame: type %v, %v", typ, err)
	}
	return nil
}

// TestIdleClientMemory measures what a registered, idle DERP client
// costs the server over plain HTTP and over TLS (the clients live in a
// child process, so the figure is the server's alone), and bounds it.
// With OPENDERP_HEAP_PROFILE=file it writes a heap profile of the TLS
// case taken while the clients are held.
func TestIdleClientMemory(t *testing.T) {
	n := 300
	if heavy() {
		n = 2000
	}
	profile := os.Getenv("OPENDERP_HEAP_PROFILE")
	raiseFDLimit(t, n+200)
	for _, tc := range []struct {
		name   string
		tls    bool
		maxKiB float64
	}{
		// Loose bounds: in one process the stack figures move by a few
		// KiB with the stack spans other goroutines left behind.
		// bench/compare gives the exact figures (docs/performance.md).
		{"plain", false, 12},
		{"TLS", true, 14},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if profile != "" && tc.tls {
				defer func(r int) { runtime.MemProfileRate = r }(runtime.MemProfileRate)
				runtime.MemProfileRate = 1
			}
			var ca *testCA
			mode := holdDERP
			if tc.tls {
				ca, mode = newTestCA(t), holdDERPTLS
			}
			ls := newLimitedServer(t, derphttp.Limits{HandshakeTimeout: time.Minute}, ca)
			ls.s.MaxConnsPerKey = 1 << 20
			mem0, g0 := memUse()
			stack0 := stackInuse()
			holdConns(t, ls.addr(), n, mode)
			waitFor(t, "clients registered", func() bool { o, p := ls.ll.Counts(); return o >= n && p == 0 })
			mem1, g1 := memUse()
			per := float64(int64(mem1)-int64(mem0)) / float64(n) / 1024
			stacks := float64(int64(stackInuse())-int64(stack0)) / float64(n) / 1024
			t.Logf("idle %s DERP client: %.1f KiB (heap+stacks, %.1f KiB stacks) and %.2f goroutines per client (%d clients)",
				tc.name, per, stacks, float64(g1-g0)/float64(n), n)
			if per > tc.maxKiB {
				t.Errorf("%.1f KiB per idle client, bound %.0f", per, tc.maxKiB)
			}
			if profile != "" && tc.tls {
				out, err := os.Create(profile)
				if err != nil {
					t.Fatal(err)
				}
				pprof.Lookup("heap").WriteTo(out, 0)
				out.Close()
				if g, err := os.Create(profile + ".goroutines"); err == nil {
					pprof.Lookup("goroutine").WriteTo(g, 1)
					g.Close()
				}
			}
		})
	}
}

// stackInuse returns the bytes of goroutine stacks in use.
func stackInuse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.StackInuse
}
