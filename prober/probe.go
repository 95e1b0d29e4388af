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

// Probe states reported in ProbeInfo.Status.
const (
	StatusUnknown   = "unknown"   // never ran
	StatusRunning   = "running"   // a run is in progress
	StatusSucceeded = "succeeded" // the latest run succeeded
	StatusFailed    = "failed"    // the latest run failed; Error says why
)

// Probe is one registered check. Its methods are safe for concurrent use.
type Probe struct {
	// set once by Run
	p            *Prober
	name         string
	interval     time.Duration // negative: continuous
	initialDelay time.Duration
	class        ProbeClass
	labels       Labels // class labels and probe labels
	ctx          context.Context
	cancel       context.CancelFunc
	done         chan struct{} // closed when the scheduling goroutine and its runs return
	sem          chan struct{} // one slot, held for a whole run: runs never overlap

	runs sync.WaitGroup // scheduled runs, each on its own goroutine

	mu        sync.Mutex
	start     time.Time       // guarded by mu; zero until the first run starts
	end       time.Time       // guarded by mu; zero until the first run ends
	latency   time.Duration   // guarded by mu; of the last run if it succeeded, else 0
	lastErr   string          // guarded by mu
	inFlight  int             // guarded by mu; runs in progress
	results   []bool          // guarded by mu; ring, at most historyLen, oldest first
	latencies []time.Duration // guarded by mu; successful runs only, oldest first
	attempts  [2]uint64       // guarded by mu; indexed by outcome (0 fail, 1 ok)
	seconds   [2]float64      // guarded by mu; indexed by outcome
}

// Name returns the probe's name.
func (pr *Probe) Name() string { return pr.name }

// IsContinuous reports whether the probe runs continuously (it was
// registered with a negative interval).
func (pr *Probe) IsContinuous() bool { return pr.interval < 0 }

// Close stops the probe, waits for its goroutines and unregisters it and
// its metrics. It is safe to call more than once.
func (pr *Probe) Close() error {
	pr.cancel()
	<-pr.done
	pr.p.unregister(pr)
	return nil
}

// sleep waits d or until the probe is stopped, which it reports as false.
func (pr *Probe) sleep(d time.Duration) bool {
	if d <= 0 {
		return pr.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-pr.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// loop is the probe's scheduling goroutine.
func (pr *Probe) loop() {
	defer close(pr.done)
	defer pr.runs.Wait()
	if pr.IsContinuous() {
		// Run, then pause |interval| after every return. The reference's
		// double run and immediate skips are not reproduced.
		// See docs/compat.md#prober-continuous.
		for {
			pr.run()
			if pr.p.once || !pr.sleep(-pr.interval) {
				return
			}
		}
	}
	if !pr.sleep(pr.initialDelay) {
		return
	}
	if pr.p.once {
		pr.run()
		return
	}
	pr.launch()
	tick := time.NewTicker(pr.interval)
	defer tick.Stop()
	for {
		select {
		case <-pr.ctx.Done():
			return
		case <-tick.C:
			pr.launch()
		}
	}
}

// launch starts a run on its own goroutine, so that a slow run does not
// delay the schedule; the semaphore keeps runs from overlapping.
func (pr *Probe) launch() {
	pr.runs.Add(1)
	go func() {
		defer pr.runs.Done()
		pr.run()
	}()
}

// errSkipped is wrapped by the error of a run that could not start
// because another run of the probe held the slot for a whole interval.
var errSkipped = errors.New("context cancelled")

// acquire takes the probe's run slot, waiting at most one interval (a
// continuous probe waits as long as it takes).
func (pr *Probe) acquire() bool {
	if pr.IsContinuous() {
		select {
		case pr.sem <- struct{}{}:
			return true
		case <-pr.ctx.Done():
			return false
		}
	}
	t := time.NewTimer(pr.interval)
	defer t.Stop()
	select {
	case pr.sem <- struct{}{}:
		return true
	case <-pr.ctx.Done():
	case <-t.C:
	}
	return false
}

// run performs one run and records it, returning the probe's state after
// it and the run's error. A run that cannot get the slot records nothing
// and returns an error wrapping errSkipped.
func (pr *Probe) run() (ProbeInfo, error) {
	if !pr.acquire() {
		return pr.Info(), fmt.Errorf("probe %s: %w", pr.name, errSkipped)
	}
	defer func() { <-pr.sem }()

	pr.mu.Lock()
	start := pr.p.now()
	pr.start = start
	pr.inFlight++
	pr.mu.Unlock()

	ctx, cancel := pr.ctx, context.CancelFunc(func() {})
	if !pr.IsContinuous() {
		ctx, cancel = context.WithTimeout(pr.ctx, pr.interval*8/10)
	}
	err := pr.call(ctx)
	cancel()
	end := pr.p.now()
	if err != nil {
		pr.p.logf("probe %s: %v", pr.name, err)
	}

	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.inFlight--
	pr.end = end
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
	return pr.infoLocked(), err
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

// ProbeInfo is a snapshot of a probe's state. Its JSON encoding, with the
// fields in this order, is the one derpprobe's /debug/probe-run and
// /debug/probe-all endpoints return.
type ProbeInfo struct {
	Name     string
	Class    string
	Interval time.Duration // negative for a continuous probe
	Labels   Labels
	Start    time.Time     // start of the latest run; zero if none
	End      time.Time     // end of the latest run; zero if none finished
	Latency  time.Duration // of the latest run if it succeeded, else 0
	Status   string        // StatusUnknown, StatusRunning, StatusSucceeded or StatusFailed
	Error    string        // the latest finished run's error, "" on success

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
	status := StatusUnknown
	switch {
	case !pr.start.IsZero() && (pr.end.IsZero() || pr.start.After(pr.end)) && pr.inFlight > 0:
		status = StatusRunning
	case pr.end.IsZero():
	case pr.lastErr == "":
		status = StatusSucceeded
	default:
		status = StatusFailed
	}
	return ProbeInfo{
		Name:            pr.name,
		Class:           pr.class.Class,
		Interval:        pr.interval,
		Labels:          maps.Clone(pr.labels),
		Start:           pr.start,
		End:             pr.end,
		Latency:         pr.latency,
		Status:          status,
		Error:           pr.lastErr,
		RecentResults:   append([]bool(nil), pr.results...),
		RecentLatencies: append([]time.Duration(nil), pr.latencies...),
	}
}

// Finished reports whether a run of the probe has finished.
func (pi ProbeInfo) Finished() bool { return !pi.End.IsZero() }

// Succeeded reports whether the latest finished run succeeded.
func (pi ProbeInfo) Succeeded() bool { return pi.Finished() && pi.Error == "" }

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
