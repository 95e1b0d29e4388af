package derphttp_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openderp/openderp/derphttp"
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
	raiseFDLimit(t, 2*n+100)
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
// must stay within half of that where the connection never speaks.
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
		{"LimitListener, first byte", true, false, holdFirstByte, 0},
		{"net/http (reference structure), TLS done", false, true, holdTLS, 0},
		{"LimitListener, TLS done", true, true, holdTLS, 0},
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
			hs := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: time.Minute, ErrorLog: nil}
			var l net.Listener = ln
			var ll *derphttp.LimitListener
			if tc.limited {
				ll = derphttp.NewLimitListener(ln, derphttp.Limits{HandshakeTimeout: time.Minute})
				hs.ConnContext = ll.ConnContext
				l = ll
				seen = func() int { o, _ := ll.Counts(); return o }
			} else {
				cs := newConnCounter()
				hs.ConnState = cs.hook
				seen = cs.count
			}
			served := make(chan struct{})
			if tc.tls {
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
			if tc.mode == holdTLS {
				// The child finished its handshakes; wait for the server
				// side to park.
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
