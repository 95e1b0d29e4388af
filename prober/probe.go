package prober

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"
)

// historyLen is how many recent results and latencies a probe keeps.
const historyLen = 10

// Probe is one registered check. Its methods are safe for concurrent use.
type Probe struct {
	// set once by Run
	p            *Prober
	name         string
	interval     time.Duration
	initialDelay time.Duration
	class        ProbeClass
	labels       Labels // class labels and probe labels
	ctx          context.Context
	cancel       context.CancelFunc
	done         chan struct{} // closed when the scheduling goroutine returns

	runMu sync.Mutex // held for a whole run: scheduled and on-demand runs never overlap

	mu        sync.Mutex
	start     time.Time       // guarded by mu; zero until the first run starts
	end       time.Time       // guarded by mu; zero until the first run ends
	latency   time.Duration   // guarded by mu; of the last run if it succeeded, else 0
	succeeded bool            // guarded by mu
	lastErr   string          // guarded by mu
	results   []bool          // guarded by mu; ring, at most historyLen, oldest first
	latencies []time.Duration // guarded by mu; successful runs only, oldest first
	attempts  [2]uint64       // guarded by mu; indexed by outcome (0 fail, 1 ok)
	seconds   [2]float64      // guarded by mu; indexed by outcome
}

// Name returns the probe's name.
func (pr *Probe) Name() string { return pr.name }

// Close stops the probe, waits for its goroutine and unregisters it and
// its metrics. It is safe to call more than once.
func (pr *Probe) Close() error {
	pr.cancel()
	<-pr.done
	pr.p.unregister(pr)
	return nil
}

// loop is the probe's scheduling goroutine.
func (pr *Probe) loop() {
	defer close(pr.done)
	if pr.initialDelay > 0 {
		t := time.NewTimer(pr.initialDelay)
		select {
		case <-pr.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	pr.run()
	if pr.p.once {
		return
	}
	tick := time.NewTicker(pr.interval)
	defer tick.Stop()
	for {
		select {
		case <-pr.ctx.Done():
			return
		case <-tick.C:
			pr.run()
		}
	}
}

// run performs one run and records it. It returns the probe's state
// after the run and before it, and the run's error.
func (pr *Probe) run() (info, prev ProbeInfo, err error) {
	pr.runMu.Lock()
	defer pr.runMu.Unlock()

	pr.mu.Lock()
	prev = pr.infoLocked()
	start := pr.p.now()
	pr.start = start
	pr.mu.Unlock()

	ctx, cancel := context.WithTimeout(pr.ctx, pr.interval*8/10)
	err = pr.call(ctx)
	cancel()
	end := pr.p.now()
	if err != nil {
		pr.p.logf("probe %s: %v", pr.name, err)
	}

	pr.mu.Lock()
	pr.end = end
	pr.succeeded = err == nil
	outcome := 0
	if err == nil {
		outcome = 1
		pr.latency = end.Sub(start)
		pr.lastErr = ""
		pr.latencies = pushRing(pr.latencies, pr.latency)
	} else {
		pr.latency = 0
		pr.lastErr = err.Error()
	}
	pr.results = pushRing(pr.results, err == nil)
	pr.attempts[outcome]++
	pr.seconds[outcome] += end.Sub(start).Seconds()
	info = pr.infoLocked()
	pr.mu.Unlock()
	return info, prev, err
}

// call runs the probe function, turning a panic into an error.
func (pr *Probe) call(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	if pr.class.Probe == nil {
		return errors.New("prober: probe has no function")
	}
	return pr.class.Probe(ctx)
}

func pushRing[T any](s []T, v T) []T {
	if len(s) >= historyLen {
		s = append(s[:0], s[len(s)-historyLen+1:]...)
	}
	return append(s, v)
}

// ProbeInfo is a snapshot of a probe's state. Its JSON encoding is the
// one derpprobe's /debug/probe-run endpoint returns.
type ProbeInfo struct {
	Name     string
	Class    string
	Interval time.Duration
	Labels   Labels
	Start    time.Time     // start of the latest run; zero if none
	End      time.Time     // end of the latest run; zero if none finished
	Latency  time.Duration // of the latest run if it succeeded, else 0
	Result   bool          // whether the latest run succeeded
	Error    string        // the latest run's error, "" on success

	RecentResults   []bool          // up to the last 10 results, oldest first
	RecentLatencies []time.Duration // up to the last 10 successful latencies, oldest first
}

// Info returns a snapshot of the probe's state.
func (pr *Probe) Info() ProbeInfo {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.infoLocked()
}

func (pr *Probe) infoLocked() ProbeInfo {
	return ProbeInfo{
		Name:            pr.name,
		Class:           pr.class.Class,
		Interval:        pr.interval,
		Labels:          maps.Clone(pr.labels),
		Start:           pr.start,
		End:             pr.end,
		Latency:         pr.latency,
		Result:          pr.succeeded,
		Error:           pr.lastErr,
		RecentResults:   append([]bool(nil), pr.results...),
		RecentLatencies: append([]time.Duration(nil), pr.latencies...),
	}
}

// RecentSuccessRatio returns the share of successes among the recent
// results, or 0 if there are none.
func (pi ProbeInfo) RecentSuccessRatio() float64 { return successRatio(pi.RecentResults) }

// RecentMedianLatency returns the middle element of the recent latencies
// in the order they were recorded (not sorted, as in the reference), or 0
// if there are none.
func (pi ProbeInfo) RecentMedianLatency() time.Duration { return middle(pi.RecentLatencies) }

func successRatio(rs []bool) float64 {
	if len(rs) == 0 {
		return 0
	}
	n := 0
	for _, ok := range rs {
		if ok {
			n++
		}
	}
	return float64(n) / float64(len(rs))
}

func middle(ls []time.Duration) time.Duration {
	if len(ls) == 0 {
		return 0
	}
	return ls[len(ls)/2]
}
