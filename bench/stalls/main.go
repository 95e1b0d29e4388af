// Command stalls measures, side by side, what stalled and slowloris
// connections cost DERP servers running as separate processes on
// loopback: the reference's v1.104.5 server and openderp's in the
// bench/compare harness structure (net/http with derper's 30 s timeouts),
// and openderp's real derper with its admission limits. It is how the
// side-by-side figures in docs/security.md were taken.
//
// For each server (a fresh process per case) it opens -n silent TCP
// connections, or -n that send one byte of a request, and reports the
// server's growth per connection in resident memory and in Go heap
// objects plus stacks after a collection; and it opens -slow connections
// that trickle request headers, one line a second, and reports how long
// the server keeps them.
//
// Usage (binaries built beforehand; see docs/security.md#side-by-side):
//
//	go run ./bench/stalls -bench v1.104.5=/tmp/v1.104.5 -bench openderp=/tmp/openderp -derper /tmp/derper
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// benchFlags collects -bench name=path.
type benchFlags []string

func (b *benchFlags) String() string     { return strings.Join(*b, ",") }
func (b *benchFlags) Set(v string) error { *b = append(*b, v); return nil }

func main() {
	log.SetFlags(0)
	var benches benchFlags
	flag.Var(&benches, "bench", "name=path of a bench/compare server binary (repeatable)")
	derper := flag.String("derper", "", "path of an openderp derper binary")
	n := flag.Int("n", 2000, "stalled connections per case")
	slow := flag.Int("slow", 50, "slowloris connections")
	flag.Parse()
	raiseFDLimit(*n + *slow + 200)

	fmt.Printf("%-26s %-12s %8s %14s %12s %12s\n", "server", "case", "conns", "RSS KiB/conn", "Go KiB/conn", "kept (s)")
	type target struct {
		name  string
		start func() (*server, error)
	}
	var targets []target
	for _, b := range benches {
		name, path, ok := strings.Cut(b, "=")
		if !ok {
			log.Fatalf("-bench %q: want name=path", b)
		}
		targets = append(targets, target{name + " (harness)", func() (*server, error) { return startBench(path) }})
	}
	if *derper != "" {
		targets = append(targets, target{"openderp derper", func() (*server, error) { return startDerper(*derper) }})
	}
	// Each case gets a fresh server, so that memory one case leaves
	// behind does not hide the next one's growth.
	for _, tg := range targets {
		for _, mode := range []string{"silent", "first byte", "slowloris"} {
			s, err := tg.start()
			if err != nil {
				log.Fatalf("%s: %v", tg.name, err)
			}
			if err := measure(tg.name, mode, s, *n, *slow); err != nil {
				s.stop()
				log.Fatalf("%s, %s: %v", tg.name, mode, err)
			}
			s.stop()
		}
	}
}

// server is one server process under test.
type server struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
	// conns returns how many connections the server holds (or goroutines
	// in its HTTP server, which is one per connection); goMem its Go heap
	// objects and stacks after a collection, or 0 if it cannot tell.
	conns func() (int, error)
	goMem func() (uint64, error)
}

func (s *server) stop() {
	s.stdin.Close()
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

func (s *server) rssKiB() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
}

var hc = &http.Client{Timeout: 10 * time.Second}

func getJSON(url string, v any) error {
	resp, err := hc.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// startBench runs a bench/compare server and reads its ready line.
func startBench(path string) (*server, error) {
	cmd := exec.Command(path, "-addr", "127.0.0.1:0")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadBytes('\n')
	if err != nil {
		cmd.Process.Kill()
		return nil, fmt.Errorf("no ready line: %w", err)
	}
	go io.Copy(io.Discard, out)
	var ready struct{ Addr string }
	if err := json.Unmarshal(line, &ready); err != nil {
		cmd.Process.Kill()
		return nil, err
	}
	s := &server{cmd: cmd, stdin: stdin, addr: ready.Addr}
	type mem struct {
		Heap       uint64 `json:"heap_objects_bytes"`
		Stack      uint64 `json:"stack_bytes"`
		Goroutines int    `json:"goroutines"`
	}
	base := -1
	s.conns = func() (int, error) {
		var m mem
		if err := getJSON("http://"+s.addr+"/bench/mem", &m); err != nil {
			return 0, err
		}
		if base < 0 {
			base = m.Goroutines
		}
		return m.Goroutines - base, nil
	}
	s.goMem = func() (uint64, error) {
		var m mem
		err := getJSON("http://"+s.addr+"/bench/mem", &m)
		return m.Heap + m.Stack, err
	}
	s.conns() // sets the baseline
	return s, nil
}

// startDerper runs derper on a free loopback port with its defaults.
func startDerper(path string) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	dir, err := os.MkdirTemp("", "stalls")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command(path, "-a", addr, "-c", filepath.Join(dir, "derper.json"), "-stun=false")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, stdin: stdin, addr: addr}
	s.conns = func() (int, error) {
		var v struct {
			Limits struct {
				Open int `json:"gauge_open_connections"`
			} `json:"conn_limits"`
		}
		err := getJSON("http://"+addr+"/debug/vars", &v)
		return v.Limits.Open - 1, err // less the request asking
	}
	s.goMem = func() (uint64, error) {
		// The heap profile with gc=1 collects first; memstats then
		// show live heap objects and stacks.
		resp, err := hc.Get("http://" + addr + "/debug/pprof/heap?gc=1")
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		var v struct {
			Mem struct {
				HeapAlloc  uint64
				StackInuse uint64
			} `json:"memstats"`
		}
		err = getJSON("http://"+addr+"/debug/vars", &v)
		return v.Mem.HeapAlloc + v.Mem.StackInuse, err
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := s.conns(); err == nil {
			return s, nil
		} else if time.Now().After(deadline) {
			cmd.Process.Kill()
			return nil, fmt.Errorf("not serving: %w", err)
		}
	}
}

// measure runs one case against s and prints its row.
func measure(name, mode string, s *server, n, slow int) error {
	if mode == "slowloris" {
		kept, err := slowloris(s.addr, slow)
		if err != nil {
			return err
		}
		slices.Sort(kept)
		fmt.Printf("%-26s %-12s %8d %14s %12s %5.1f–%4.1f\n", name, mode, slow, "", "", kept[0].Seconds(), kept[len(kept)-1].Seconds())
		return nil
	}
	rss0 := s.rssKiB()
	go0, err := s.goMem()
	if err != nil {
		return err
	}
	conns, err := hold(s.addr, n, mode)
	if err != nil {
		return err
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if err := waitConns(s, n); err != nil {
		return err
	}
	rss1 := s.rssKiB()
	go1, err := s.goMem()
	if err != nil {
		return err
	}
	fmt.Printf("%-26s %-12s %8d %14.1f %12.1f %12s\n", name, mode, n, float64(rss1-rss0)/float64(n),
		(float64(go1)-float64(go0))/float64(n)/1024, "")
	return nil
}

// waitConns waits (at most a minute) until the server holds want
// connections, or at least want when want > 0.
func waitConns(s *server, want int) error {
	var got int
	var err error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		got, err = s.conns()
		if err == nil && (got == want || want > 0 && got >= want) {
			return nil
		}
	}
	return fmt.Errorf("server holds %d connections, want %d (%v)", got, want, err)
}

// hold opens n connections to addr from 127.0.0.2 onwards (so no address
// meets a per-address cap or runs out of ports); in "first byte" mode each
// sends "G".
func hold(addr string, n int, mode string) ([]net.Conn, error) {
	var conns []net.Conn
	for i := range n {
		c, err := dialFrom(i, addr)
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, err
		}
		if mode == "first byte" {
			io.WriteString(c, "G")
		}
		conns = append(conns, c)
	}
	return conns, nil
}

func dialFrom(i int, addr string) (net.Conn, error) {
	src := net.IPv4(127, 0, byte(1+i/60000), byte(2+i%250))
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 10 * time.Second}
	return d.Dial("tcp", addr)
}

// slowloris opens n connections that send a request line and then one
// header line a second, and returns how long the server kept each (at
// most 90 s).
func slowloris(addr string, n int) ([]time.Duration, error) {
	type result struct {
		d   time.Duration
		err error
	}
	res := make(chan result, n)
	for i := range n {
		go func() {
			c, err := dialFrom(i, addr)
			if err != nil {
				res <- result{err: err}
				return
			}
			defer c.Close()
			start := time.Now()
			closed := make(chan struct{})
			go func() {
				io.Copy(io.Discard, c)
				close(closed)
			}()
			io.WriteString(c, "GET /derp HTTP/1.1\r\nHost: derp.test\r\n")
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for j := 0; ; j++ {
				select {
				case <-closed:
					res <- result{d: time.Since(start)}
					return
				case <-t.C:
					if time.Since(start) > 90*time.Second {
						res <- result{err: errors.New("still open after 90 s")}
						return
					}
					fmt.Fprintf(c, "X-Slow-%d: a\r\n", j)
				}
			}
		}()
	}
	var kept []time.Duration
	for range n {
		r := <-res
		if r.err != nil {
			return nil, r.err
		}
		kept = append(kept, r.d)
	}
	return kept, nil
}

func raiseFDLimit(n int) {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) == nil && r.Cur < uint64(n) && r.Max >= uint64(n) {
		r.Cur = uint64(n)
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
	}
}
