// Command compare benchmarks openderp's DERP server side by side with
// Tailscale's v1.76.3 and today's (v1.104.5), each built from its own
// module under servers/ and run in its own process, all driven by the
// same client (internal/relayload, over openderp's derphttp client). The
// round-trip probe runs in a second process of this binary (see probe.go),
// so that the load clients do not delay it inside one Go scheduler.
//
// It measures relay throughput (windowed and flat out), server CPU per
// packet, round trips idle and under load, and the server's memory per
// idle client and CPU per handshake over plain HTTP and TLS. Each figure
// is the median of several interleaved runs, with its min and max; the
// table divides openderp's figure by each reference's, run by run.
//
//	go run .            # full run: 3 x 7-13 minutes on a busy 2-core machine
//	QUICK=1 go run .    # smoke run, about two minutes
//	go run . -impls openderp,v1.104.5 -no-idle -pairs 8 -sizes 100,1280
//
// See docs/performance.md for the method and the latest table.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"
)

// plan is what to measure and how long.
type plan struct {
	runs       int
	relayDur   time.Duration
	rttDur     time.Duration
	sizes      []int
	pairs      []int
	idleSteps  []int
	stalled    int // connections that finish TLS and then stall
	skipIdle   bool
	skipRelay  bool
	maxRuntime time.Duration
}

func fullPlan() plan {
	return plan{
		runs: 3, relayDur: 2 * time.Second, rttDur: 2 * time.Second,
		sizes: []int{100, 1280}, pairs: []int{1, 8, 64}, idleSteps: []int{2000, 10000}, stalled: 2000,
		maxRuntime: 40 * time.Minute,
	}
}

func quickPlan() plan {
	return plan{
		runs: 1, relayDur: 300 * time.Millisecond, rttDur: 300 * time.Millisecond,
		sizes: []int{100, 1280}, pairs: []int{1, 8, 64}, idleSteps: []int{200, 1000}, stalled: 1000,
		maxRuntime: 10 * time.Minute,
	}
}

func main() {
	if os.Getenv(probeEnv) != "" {
		os.Exit(probeMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := mainErr(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "compare: %v\n", err)
		os.Exit(1)
	}
}

func mainErr(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", os.Getenv("QUICK") != "" && os.Getenv("QUICK") != "0", "short smoke run (also QUICK=1)")
	runs := fs.Int("runs", 0, "runs per figure (0: 3, or 1 when quick)")
	only := fs.String("impls", "", "comma-separated implementations to run (default all): openderp,v1.76.3,v1.104.5")
	out := fs.String("json", "", "also write every run's raw figures to this file")
	stalled := fs.Int("stalled", 0, "connections for the stalled-after-TLS case (0: 2000, or 1000 when quick)")
	maxTime := fs.Duration("max", 0, "stop measuring after this long and report the runs done (0: 40m, or 10m when quick)")
	sizes := fs.String("sizes", "", "comma-separated relay packet sizes (default 100,1280)")
	pairs := fs.String("pairs", "", "comma-separated relay pair counts (default 1,8,64)")
	noIdle := fs.Bool("no-idle", false, "skip the idle-client (memory and handshake) cases")
	noRelay := fs.Bool("no-relay", false, "skip the relay and round-trip cases")
	maxProcs := fs.Int("gomaxprocs", 0, "run every server with this GOMAXPROCS (0: the Go default, the number of CPUs)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p := fullPlan()
	if *quick {
		p = quickPlan()
	}
	if *runs > 0 {
		p.runs = min(*runs, 9)
	}
	if *maxTime > 0 {
		p.maxRuntime = *maxTime
	}
	var err error
	if *sizes != "" {
		if p.sizes, err = parseInts(*sizes, 16, 64<<10); err != nil {
			return fmt.Errorf("-sizes: %w", err)
		}
	}
	if *pairs != "" {
		if p.pairs, err = parseInts(*pairs, 1, 1000); err != nil {
			return fmt.Errorf("-pairs: %w", err)
		}
	}
	p.skipIdle, p.skipRelay = *noIdle, *noRelay
	if *stalled > 0 {
		p.stalled = *stalled
	}
	if n := max(p.idleSteps[len(p.idleSteps)-1], p.stalled); !p.skipIdle {
		if err := raiseFileLimit(uint64(n) + 256); err != nil {
			return err
		}
	}
	impls := allImpls()
	if *only != "" {
		impls = filterImpls(impls, strings.Split(*only, ","))
	}
	if *maxProcs < 0 {
		return fmt.Errorf("-gomaxprocs %d: must not be negative", *maxProcs)
	}
	for _, im := range impls {
		im.maxProcs = *maxProcs
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }

	ctx, cancel := context.WithTimeout(ctx, p.maxRuntime)
	defer cancel()
	dir, err := os.MkdirTemp("", "derp-compare-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	impls, err = buildAll(ctx, dir, impls, logf)
	if err != nil {
		return err
	}
	res := measureAll(ctx, p, impls, logf)
	derive(res)
	if *out != "" {
		if err := writeJSON(*out, res); err != nil {
			return err
		}
	}
	printTable(stdout, p, res)
	return nil
}

// parseInts parses a comma-separated list of integers within [lo, hi].
func parseInts(s string, lo, hi int) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		if n < lo || n > hi {
			return nil, fmt.Errorf("%d out of range [%d, %d]", n, lo, hi)
		}
		out = append(out, n)
	}
	return out, nil
}

func filterImpls(all []*impl, names []string) []*impl {
	var out []*impl
	for _, im := range all {
		for _, n := range names {
			if strings.TrimSpace(n) == im.name {
				out = append(out, im)
			}
		}
	}
	return out
}

// buildAll builds every implementation into a temporary directory and
// drops, with a note, those that do not build.
func buildAll(ctx context.Context, dir string, impls []*impl, logf func(string, ...any)) ([]*impl, error) {
	var ok []*impl
	for _, im := range impls {
		t0 := time.Now()
		if err := im.build(ctx, dir); err != nil {
			logf("skipping %s: %v", im.name, err)
			continue
		}
		logf("built %s in %v", im.name, time.Since(t0).Round(time.Millisecond))
		ok = append(ok, im)
	}
	if len(ok) == 0 {
		return nil, fmt.Errorf("no server built")
	}
	return ok, nil
}

// results maps implementation → metric key → the value of each run, NaN
// where a run failed, so that ratios pair figures of the same run.
type results map[string]map[string][]float64

func (r results) add(run, runs int, im string, m metrics) {
	if r[im] == nil {
		r[im] = map[string][]float64{}
	}
	for k, v := range m {
		vs := r[im][k]
		for len(vs) < runs {
			vs = append(vs, math.NaN())
		}
		vs[run] = v
		r[im][k] = vs
	}
}

// writeJSON writes res to file, with null for failed runs.
func writeJSON(file string, res results) error {
	out := map[string]map[string][]*float64{}
	for im, ms := range res {
		out[im] = map[string][]*float64{}
		for k, vs := range ms {
			for _, v := range vs {
				var p *float64
				if !math.IsNaN(v) {
					p = &v
				}
				out[im][k] = append(out[im][k], p)
			}
		}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o644)
}

// measureAll runs every case, interleaving the implementations case by
// case and rotating their order from run to run, so that a noisy
// neighbour weighs on all of them alike.
func measureAll(ctx context.Context, p plan, impls []*impl, logf func(string, ...any)) results {
	res := results{}
	var cases []relayCase
	for _, size := range p.sizes {
		for _, pairs := range p.pairs {
			cases = append(cases, relayCase{size, pairs, false}, relayCase{size, pairs, true})
		}
	}
	t0 := time.Now()
	for run := range p.runs {
		order := append(impls[run%len(impls):], impls[:run%len(impls)]...)
		each := func(what string, useTLS bool, f func(*server) (metrics, func(), error)) {
			for _, im := range order {
				if ctx.Err() != nil {
					return
				}
				s, err := im.start(useTLS)
				if err != nil {
					logf("run %d, %s, %s: %v", run+1, what, im.name, err)
					continue
				}
				m, cleanup, err := f(s)
				s.stop()
				if cleanup != nil {
					cleanup()
				}
				if err != nil {
					logf("run %d, %s, %s: %v; server log: %.500s", run+1, what, im.name, err, s.log.String())
					continue
				}
				res.add(run, p.runs, im.name, m)
				logf("run %d, %s, %s: %s", run+1, what, im.name, m)
			}
		}
		if !p.skipRelay {
			each("idle RTT", false, func(s *server) (metrics, func(), error) {
				m, err := measureIdleRTT(ctx, s, p.rttDur)
				return m, nil, err
			})
			for _, c := range cases {
				each(c.String(), false, func(s *server) (metrics, func(), error) {
					m, err := measureRelay(ctx, s, c, p.relayDur)
					return m, nil, err
				})
			}
		}
		if !p.skipIdle {
			for _, useTLS := range []bool{false, true} {
				what := "idle clients over HTTP"
				if useTLS {
					what = "idle clients over TLS"
				}
				each(what, useTLS, func(s *server) (metrics, func(), error) {
					return measureIdle(ctx, s, p.idleSteps)
				})
			}
			if p.stalled > 0 {
				each("stalled after TLS", true, func(s *server) (metrics, func(), error) {
					return measureStalledTLS(ctx, s, p.stalled)
				})
			}
		}
		logf("run %d of %d done after %v", run+1, p.runs, time.Since(t0).Round(time.Second))
	}
	return res
}

// String formats m compactly for the progress log.
func (m metrics) String() string {
	var b strings.Builder
	for _, k := range sortedKeys(m) {
		fmt.Fprintf(&b, "%s=%.4g ", k, m[k])
	}
	return strings.TrimSpace(b.String())
}
