package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/internal/relayload"
	"github.com/openderp/openderp/key"
)

// metrics are the figures one case produced for one server in one run,
// by metric key.
type metrics map[string]float64

// relayCase is one relay measurement: pairs of clients sending packets of
// size bytes, 32 in flight per pair or flat out.
type relayCase struct {
	size, pairs int
	flat        bool
}

// window is how many packets each pair keeps in flight in the windowed
// cases.
const window = 32

func (c relayCase) prefix() string {
	mode := "win"
	if c.flat {
		mode = "flat"
	}
	return fmt.Sprintf("relay.%d.%d.%s.", c.size, c.pairs, mode)
}

func (c relayCase) String() string {
	mode := fmt.Sprintf("%d in flight", window)
	if c.flat {
		mode = "flat out"
	}
	return fmt.Sprintf("relay %d pairs x %d B, %s", c.pairs, c.size, mode)
}

// rttGap is the probe's pause between round trips.
const rttGap = 2 * time.Millisecond

// measureRelay runs c against s for d and reports delivered packets per
// second, the drop fraction, packets per server CPU-second and the
// round-trip percentiles of a probe running meanwhile in its own process.
func measureRelay(ctx context.Context, s *server, c relayCase, d time.Duration) (metrics, error) {
	pp, err := startProbe(ctx, s.url(), d, rttGap)
	if err != nil {
		return nil, err
	}
	defer pp.stop()
	var cpu0, cpu1 time.Duration
	var cpuErr error
	cfg := relayload.Config{
		URL: s.url(), Pairs: c.pairs, Size: c.size, Duration: d, RTTInterval: -1,
		Started: func() {
			cpu0, cpuErr = s.cpu()
			if err := pp.begin(); err != nil && cpuErr == nil {
				cpuErr = fmt.Errorf("starting the probe: %w", err)
			}
		},
		Stopped: func() {
			var err error
			cpu1, err = s.cpu()
			if cpuErr == nil {
				cpuErr = err
			}
		},
	}
	if !c.flat {
		cfg.Window = window
	}
	res, err := relayload.Run(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if cpuErr != nil {
		return nil, fmt.Errorf("reading server CPU: %w", cpuErr)
	}
	rtt, err := pp.result(ctx)
	if err != nil {
		return nil, fmt.Errorf("round-trip probe: %w", err)
	}
	p := c.prefix()
	m := metrics{
		p + "pps":  res.PacketsPerSec,
		p + "drop": res.DropFraction,
	}
	if rtt.Samples > 0 { // none when every probe took over a second
		m[p+"rtt50"] = rtt.P50
		m[p+"rtt99"] = rtt.P99
	}
	if cpu := (cpu1 - cpu0).Seconds(); cpu > 0 {
		m[p+"ppcpu"] = float64(res.Delivered) / cpu
	}
	return m, nil
}

// measureIdleRTT runs only the probe process against an otherwise idle s.
func measureIdleRTT(ctx context.Context, s *server, d time.Duration) (metrics, error) {
	pp, err := startProbe(ctx, s.url(), d, rttGap/2)
	if err != nil {
		return nil, err
	}
	defer pp.stop()
	if err := pp.begin(); err != nil {
		return nil, fmt.Errorf("starting the probe: %w", err)
	}
	rtt, err := pp.result(ctx)
	if err != nil {
		return nil, fmt.Errorf("round-trip probe: %w", err)
	}
	return metrics{"rtt.idle.p50": rtt.P50, "rtt.idle.p99": rtt.P99}, nil
}

const (
	idleWorkers        = 32
	idleConnectTimeout = 30 * time.Second
)

// measureIdle connects idle clients to s in steps (such as 2,000 then
// 10,000 in all) and reports, at each step, the growth of the server's
// RSS and live Go heap per client since before the first, and over all
// steps the server CPU per handshake and handshakes per second. It
// returns the clients' closer: the caller stops the server first, so that
// the server side of each connection closes first and no client port
// lingers in TIME_WAIT.
func measureIdle(ctx context.Context, s *server, steps []int) (metrics, func(), error) {
	prefix := "idle.plain."
	var tlsCfg *tls.Config
	if s.ready.Pin != "" {
		prefix = "idle.tls."
		var err error
		if tlsCfg, err = relayload.PinnedTLSConfig(s.ready.Pin); err != nil {
			return nil, func() {}, err
		}
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()

	var clients []*derphttp.Client
	closeAll := func() {
		var wg sync.WaitGroup
		for _, c := range clients {
			wg.Go(func() { c.Close() })
		}
		wg.Wait()
	}
	base, err := s.footprint(ctx, hc)
	if err != nil {
		return nil, closeAll, err
	}
	m := metrics{}
	var hsWall time.Duration
	var hsCPU time.Duration
	for _, n := range steps {
		c0, err := s.cpu()
		if err != nil {
			return nil, closeAll, err
		}
		t0 := time.Now()
		more, err := connectIdle(ctx, s.url(), tlsCfg, n-len(clients))
		clients = append(clients, more...)
		if err != nil {
			return nil, closeAll, err
		}
		hsWall += time.Since(t0)
		c1, err := s.cpu()
		if err != nil {
			return nil, closeAll, err
		}
		hsCPU += c1 - c0
		f, err := s.footprint(ctx, hc)
		if err != nil {
			return nil, closeAll, err
		}
		m[fmt.Sprintf("%srss.%d", prefix, n)], m[fmt.Sprintf("%sheap.%d", prefix, n)] = f.perConn(base, n)
	}
	total := len(clients)
	m[prefix+"hs_cpu_us"] = float64(hsCPU.Microseconds()) / float64(total)
	m[prefix+"hs_rate"] = float64(total) / hsWall.Seconds()
	return m, closeAll, nil
}

// connectIdle connects n clients, each waiting for the server's handshake
// reply, and leaves them idle.
func connectIdle(ctx context.Context, url string, tlsCfg *tls.Config, n int) ([]*derphttp.Client, error) {
	clients := make([]*derphttp.Client, n)
	errs := make([]error, n)
	inParallel(n, func(i int) { clients[i], errs[i] = connectOne(ctx, url, tlsCfg) })
	var ok []*derphttp.Client
	var first error
	for i, c := range clients {
		if c != nil {
			ok = append(ok, c)
		}
		if errs[i] != nil && first == nil {
			first = fmt.Errorf("idle client %d: %w", i, errs[i])
		}
	}
	return ok, first
}

// inParallel calls f for every index below n, idleWorkers calls at a
// time, and returns once all have returned.
func inParallel(n int, f func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range idleWorkers {
		wg.Go(func() {
			for i := range next {
				f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

func connectOne(ctx context.Context, url string, tlsCfg *tls.Config) (*derphttp.Client, error) {
	c, err := derphttp.NewClient(key.NewNode(), url, nil)
	if err != nil {
		return nil, err
	}
	c.TLSConfig = tlsCfg
	ctx, cancel := context.WithTimeout(ctx, idleConnectTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { c.Close() }) // bounds Recv below
	defer stop()
	if err := c.Connect(ctx); err != nil {
		c.Close()
		return nil, err
	}
	// The first message is the server's reply to the handshake: the
	// server has now done all of its per-connection setup.
	if _, err := c.Recv(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
