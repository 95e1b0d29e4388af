// Command soak runs a DERP relay on loopback under many clients that come
// and go while sending steady traffic, and reports the relay's resident
// memory, heap, goroutines and file descriptors before, during and after,
// in a table. It is what "make soak" runs; it is not part of "make test".
//
// The relay runs in this process; the clients run in worker processes
// (this program re-run with -worker), so that the figures are the relay's
// alone and each process stays within its descriptor limit. Every loop is
// bounded by -duration; the whole run takes about -duration plus the ramp
// up and drain, and is cut off at 10 minutes whatever happens.
//
// It also balances the books: every packet a client sent must have been
// received by a client or counted by the relay as dropped, with a reason;
// the run fails otherwise.
//
// Usage:
//
//	go run ./internal/soak [-clients 10000] [-workers 4] [-duration 3m] [-churn 0.02] [-rate 1]
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/key"
)

// hardLimit ends the run whatever the flags say.
const hardLimit = 10 * time.Minute

func main() {
	log.SetFlags(0)
	var (
		clients  = flag.Int("clients", 10000, "clients connected at once, over all workers")
		workers  = flag.Int("workers", 4, "client worker processes")
		duration = flag.Duration("duration", 3*time.Minute, "length of the steady phase (churn and traffic)")
		churn    = flag.Float64("churn", 0.02, "fraction of each worker's clients replaced every second")
		rate     = flag.Float64("rate", 1, "packets per second each client sends")
		worker   = flag.String("worker", "", "internal: run as a client worker against this URL")
	)
	flag.Parse()
	if *worker != "" {
		os.Exit(runWorker(*worker, *clients, *duration, *churn, *rate))
	}
	if err := run(*clients, *workers, *duration, *churn, *rate); err != nil {
		log.Fatalf("soak: %v", err)
	}
}

// sample is one measurement of the relay process.
type sample struct {
	phase      string
	at         time.Duration
	rssKiB     int64
	heapKiB    uint64
	goroutines int
	fds        int
	conns      int64
}

func measure(phase string, start time.Time) sample {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return sample{
		phase:      phase,
		at:         time.Since(start).Round(time.Second),
		rssKiB:     rss(),
		heapKiB:    ms.HeapInuse / 1024,
		goroutines: runtime.NumGoroutine(),
		fds:        openFDs(),
	}
}

func run(clients, workers int, duration time.Duration, churn, rate float64) error {
	raiseFDLimit()
	ctx, cancel := context.WithTimeout(context.Background(), hardLimit)
	defer cancel()

	s := derp.NewServer(key.NewNode(), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ll := derphttp.NewLimitListener(ln, derphttp.Limits{HandshakeTimeout: 10 * time.Second, MaxPending: 20000, MaxPendingPerIP: 512})
	hs := &http.Server{
		Handler:           ll.Handler(derphttp.Handler(s)),
		ConnContext:       ll.ConnContext,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go hs.Serve(ll)
	defer func() {
		hs.Close()
		ll.Close()
		s.Close()
	}()
	url := "http://" + ln.Addr().String() + "/derp"
	start := time.Now()
	var samples []sample
	samples = append(samples, measureLL("before", start, ll))

	// Start the workers.
	per := (clients + workers - 1) / workers
	type wproc struct {
		cmd *exec.Cmd
		out *bufio.Scanner
	}
	var procs []wproc
	for i := range workers {
		cmd := exec.CommandContext(ctx, os.Args[0], "-worker", url, "-clients", strconv.Itoa(per),
			"-duration", duration.String(), "-churn", fmt.Sprint(churn), "-rate", fmt.Sprint(rate))
		cmd.Env = append(os.Environ(), "SOAK_WORKER="+strconv.Itoa(i))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		procs = append(procs, wproc{cmd, bufio.NewScanner(out)})
	}

	// Sample while they run: every 10 s.
	results := make(chan string, workers)
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p.out.Scan() {
				if line := p.out.Text(); strings.HasPrefix(line, "result ") {
					results <- line
				}
			}
			p.cmd.Wait()
		}()
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
loop:
	for {
		select {
		case <-allDone:
			break loop
		case <-ctx.Done():
			return errors.New("hard time limit reached")
		case <-tick.C:
			samples = append(samples, measureLL("during", start, ll))
		}
	}
	close(results)

	// Drain: every client is gone; wait (at most a minute) for the relay
	// to notice and for its connection goroutines to finish unwinding.
	drainStart := time.Now()
	for time.Since(drainStart) < time.Minute {
		o, _ := ll.Counts()
		if o == 0 && runtime.NumGoroutine() <= samples[0].goroutines+10 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	drained := time.Since(drainStart).Round(100 * time.Millisecond)
	after := measureLL("after", start, ll)
	samples = append(samples, after)

	fmt.Printf("\nopenderp soak: %d clients over %d workers, %v steady phase, churn %.0f%%/s, %.1f pkt/s/client\n\n",
		clients, workers, duration, churn*100, rate)
	fmt.Printf("%-8s %8s %10s %10s %11s %8s %8s\n", "phase", "t", "RSS MiB", "heap MiB", "goroutines", "fds", "conns")
	for _, sm := range samples {
		fmt.Printf("%-8s %8v %10.1f %10.1f %11d %8d %8d\n", sm.phase, sm.at, float64(sm.rssKiB)/1024, float64(sm.heapKiB)/1024, sm.goroutines, sm.fds, sm.conns)
	}
	var w workerTotals
	for r := range results {
		var x workerTotals
		fmt.Sscanf(r, "result sent=%d recv=%d conns=%d errors=%d leave_timeouts=%d redials=%d cut_ends=%d",
			&x.sent, &x.recv, &x.conns, &x.errs, &x.leaveTimeouts, &x.redials, &x.cutEnds)
		w.add(x)
	}
	fmt.Printf("\nclients connected in total: %d; client errors %d, leave timeouts %d, redials %d, connections cut mid-frame %d\n",
		w.conns, w.errs, w.leaveTimeouts, w.redials, w.cutEnds)
	exact := printAccounting(w, s)
	before := samples[0]
	ok := after.goroutines <= before.goroutines+10 && after.fds <= before.fds+10 && after.heapKiB <= before.heapKiB+32*1024
	fmt.Printf("drained %v after the last worker exited\n", drained)
	fmt.Printf("\nafter vs before: goroutines %+d, fds %+d, heap %+.1f MiB: %s\n",
		after.goroutines-before.goroutines, after.fds-before.fds, (float64(after.heapKiB)-float64(before.heapKiB))/1024,
		map[bool]string{true: "bounded (OK)", false: "GREW (FAIL)"}[ok])
	if !ok {
		return errors.New("resources did not return to their starting level")
	}
	if !exact {
		return errors.New("packets unaccounted for")
	}
	return nil
}

func measureLL(phase string, start time.Time, ll *derphttp.LimitListener) sample {
	sm := measure(phase, start)
	o, _ := ll.Counts()
	sm.conns = int64(o)
	return sm
}

// runWorker keeps n clients connected to url for duration, replacing a
// churn fraction of them every second, each sending rate packets a
// second to a random other client of this worker. It prints one result
// line and returns the exit status.
//
// Clients leave gracefully so that every packet can be accounted for: a
// leaving client shuts down its sending side and keeps reading until the
// relay closes the connection. The relay then either wrote a packet
// meant for it before closing (and the client counts it received) or
// dropped it and counted the drop; nothing is left in a socket buffer
// that a close would discard.
func runWorker(url string, n int, duration time.Duration, churn, rate float64) int {
	raiseFDLimit()
	var sent, recv, conns, errs, leaveTimeouts, redials, cutEnds atomic.Int64
	type slot struct {
		c    *derphttp.Client
		tc   *net.TCPConn  // the client's connection to the relay
		done chan struct{} // closed when the receive loop has ended
	}
	slots := make([]*slot, n)
	var mu sync.Mutex // guards slots
	connect := func(i int) {
		c, err := derphttp.NewClient(key.NewNode(), url, nil)
		if err != nil {
			errs.Add(1)
			return
		}
		var tc atomic.Pointer[net.TCPConn] // set by the dialer
		c.SetURLDialer(func(ctx context.Context, network, addr string) (net.Conn, error) {
			if tc.Load() != nil {
				redials.Add(1) // a reconnect: the books cannot balance
			}
			var d net.Dialer
			nc, err := d.DialContext(ctx, network, addr)
			if err == nil {
				tc.Store(nc.(*net.TCPConn))
			}
			return nc, err
		})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = c.Connect(ctx)
		cancel()
		if err != nil {
			errs.Add(1)
			c.Close()
			return
		}
		conns.Add(1)
		sl := &slot{c: c, tc: tc.Load(), done: make(chan struct{})}
		go func() {
			defer close(sl.done)
			for {
				m, err := c.Recv()
				if err != nil {
					// A clean end is io.EOF at a frame boundary;
					// anything else means the relay closed in the
					// middle of a frame.
					if !errors.Is(err, io.EOF) && !errors.Is(err, derphttp.ErrClientClosed) {
						cutEnds.Add(1)
					}
					return
				}
				if _, ok := m.(derp.ReceivedPacket); ok {
					recv.Add(1)
				}
			}
		}()
		mu.Lock()
		slots[i] = sl
		mu.Unlock()
	}
	leave := func(i int) {
		mu.Lock()
		sl := slots[i]
		slots[i] = nil
		mu.Unlock()
		if sl == nil {
			return
		}
		sl.tc.CloseWrite()
		t := time.NewTimer(10 * time.Second)
		select {
		case <-sl.done:
		case <-t.C:
			leaveTimeouts.Add(1)
		}
		t.Stop()
		sl.c.Close()
		<-sl.done
	}
	// Ramp up, 64 at a time.
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() { defer wg.Done(); connect(i); <-sem }()
	}
	wg.Wait()

	end := time.Now().Add(duration)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	payload := make([]byte, 200)
	for now := range tick.C {
		if now.After(end) {
			break
		}
		// Churn: replace churn/10 of the clients every tick.
		for range int(float64(n)*churn/10 + rand.Float64()) {
			i := rand.IntN(n)
			leave(i)
			connect(i)
		}
		// Traffic: rate/10 packets per client per tick.
		for range int(float64(n)*rate/10 + rand.Float64()) {
			mu.Lock()
			a, b := slots[rand.IntN(n)], slots[rand.IntN(n)]
			mu.Unlock()
			if a == nil || b == nil {
				continue
			}
			if err := a.c.Send(b.c.SelfPublicKey(), payload); err == nil {
				sent.Add(1)
			} else {
				errs.Add(1)
			}
		}
	}
	// Leave, 64 at a time.
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() { defer wg.Done(); leave(i); <-sem }()
	}
	wg.Wait()
	fmt.Printf("result sent=%d recv=%d conns=%d errors=%d leave_timeouts=%d redials=%d cut_ends=%d\n",
		sent.Load(), recv.Load(), conns.Load(), errs.Load(), leaveTimeouts.Load(), redials.Load(), cutEnds.Load())
	return 0
}

// rss returns the process's resident set size in KiB, or 0.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
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

func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}

func raiseFDLimit() {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) == nil && r.Cur < r.Max {
		r.Cur = r.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
	}
}
