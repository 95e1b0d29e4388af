package prober

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ProbeFunc performs one check. It returns nil on success. It must return
// soon after ctx is done.
type ProbeFunc func(ctx context.Context) error

// Labels are constant label pairs attached to a probe's metrics.
type Labels map[string]string

// ProbeClass describes a kind of probe: the function to run and what its
// metrics carry.
type ProbeClass struct {
	// Probe is called on every run.
	Probe ProbeFunc

	// Class names the kind of probe ("tls", "derp_mesh", ...). It becomes
	// the "class" label.
	Class string

	// Labels are added to the metrics of every probe of the class.
	Labels Labels

	// Metrics, if non-nil, returns extra metrics for one probe. It is
	// called on every collection with the Prober's namespace and the
	// probe's full label set.
	Metrics func(namespace string, labels Labels) []prometheus.Metric
}

// DefaultNamespace is the metric namespace of a Prober unless
// WithMetricNamespace changes it.
const DefaultNamespace = "prober"

// Prober schedules probes. Create one with New, configure it with the
// With methods before the first Run, then register probes with Run.
type Prober struct {
	// set once before the first Run
	spread    bool
	once      bool
	namespace string
	logf      func(format string, args ...any)
	now       func() time.Time

	ctx    context.Context // parent of every probe's context
	cancel context.CancelFunc

	mu     sync.Mutex
	probes map[string]*Probe // guarded by mu
	closed bool              // guarded by mu
}

// New returns a Prober with spreading and once mode off, the default
// namespace and logging discarded.
func New() *Prober {
	ctx, cancel := context.WithCancel(context.Background())
	return &Prober{
		namespace: DefaultNamespace,
		logf:      func(string, ...any) {},
		now:       time.Now,
		ctx:       ctx,
		cancel:    cancel,
		probes:    make(map[string]*Probe),
	}
}

// WithSpread sets whether each probe's first run is delayed by a
// per-name fraction of its interval. It returns p.
func (p *Prober) WithSpread(v bool) *Prober { p.spread = v; return p }

// WithOnce sets once mode, in which every probe runs a single time. It
// returns p.
func (p *Prober) WithOnce(v bool) *Prober { p.once = v; return p }

// WithMetricNamespace sets the prefix of every metric name. It returns p.
func (p *Prober) WithMetricNamespace(ns string) *Prober { p.namespace = ns; return p }

// WithLogf sets where probe failures and lifecycle events are logged
// (nil discards). It returns p.
func (p *Prober) WithLogf(logf func(format string, args ...any)) *Prober {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	p.logf = logf
	return p
}

// reservedLabels are set by the Prober itself.
var reservedLabels = []string{"name", "class", "status"}

// Run registers a probe called name that runs pc.Probe every interval,
// starts it, and returns it. Each scheduled run starts on its own
// goroutine; runs of one probe never overlap, and a run that cannot start
// within one interval is skipped. A run's context expires after 80% of
// the interval.
//
// A negative interval makes the probe continuous: pc.Probe runs with no
// deadline until it returns, and is started again -interval after that.
// Continuous probes are not spread and cannot be run on demand.
//
// Registering a name twice, a zero interval, or a label that clashes with
// name, class or status is a programming error and panics. After Close,
// Run returns a probe that never runs and is not registered.
func (p *Prober) Run(name string, interval time.Duration, labels Labels, pc ProbeClass) *Probe {
	if interval == 0 {
		panic(fmt.Sprintf("prober: probe %q: interval is zero", name))
	}
	all := make(Labels, len(labels)+len(pc.Labels))
	for _, ls := range []Labels{pc.Labels, labels} {
		for k, v := range ls {
			if slices.Contains(reservedLabels, k) {
				panic(fmt.Sprintf("prober: probe %q: label %q is reserved", name, k))
			}
			if _, dup := all[k]; dup {
				panic(fmt.Sprintf("prober: probe %q: label %q set twice", name, k))
			}
			all[k] = v
		}
	}
	pr := &Probe{
		p:        p,
		name:     name,
		interval: interval,
		class:    pc,
		labels:   all,
		done:     make(chan struct{}),
		sem:      make(chan struct{}, 1),
	}
	if p.spread && interval > 0 {
		pr.initialDelay = initialDelay(name, interval)
	}
	pr.ctx, pr.cancel = context.WithCancel(p.ctx)

	p.mu.Lock()
	defer p.mu.Unlock()
	if _, dup := p.probes[name]; dup {
		panic(fmt.Sprintf("prober: probe %q registered twice", name))
	}
	if p.closed {
		// A probe created by a run that raced with Close: it never runs
		// and is not registered.
		pr.cancel()
		close(pr.done)
		return pr
	}
	p.probes[name] = pr
	go pr.loop()
	return pr
}

// initialDelay is interval times the first float drawn from a math/rand
// source seeded with the FNV-1 hash of name, so a probe keeps its phase
// across restarts and derpprobe instances.
func initialDelay(name string, interval time.Duration) time.Duration {
	h := fnv.New64()
	h.Write([]byte(name))
	r := rand.New(rand.NewSource(int64(h.Sum64())))
	return time.Duration(float64(interval) * r.Float64())
}

// Probe returns the probe called name, or nil.
func (p *Prober) Probe(name string) *Probe {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.probes[name]
}

// sorted returns the registered probes in name order.
func (p *Prober) sorted() []*Probe {
	p.mu.Lock()
	defer p.mu.Unlock()
	names := slices.Sorted(maps.Keys(p.probes))
	out := make([]*Probe, len(names))
	for i, n := range names {
		out[i] = p.probes[n]
	}
	return out
}

// ProbeInfo returns the state of every registered probe, by name.
func (p *Prober) ProbeInfo() map[string]ProbeInfo {
	out := make(map[string]ProbeInfo)
	for _, pr := range p.sorted() {
		out[pr.name] = pr.Info()
	}
	return out
}

// Wait blocks until the goroutine of every probe has finished, including
// probes registered while it waits (a probe may create probes). In once
// mode that is when every probe has run; otherwise it is after Close or
// after every probe was closed.
func (p *Prober) Wait() {
	seen := make(map[*Probe]bool)
	for {
		p.mu.Lock()
		var pending []*Probe
		for _, pr := range p.probes {
			if !seen[pr] {
				pending = append(pending, pr)
			}
		}
		p.mu.Unlock()
		if len(pending) == 0 {
			return
		}
		for _, pr := range pending {
			<-pr.done
			seen[pr] = true
		}
	}
}

// Close stops every probe, waits for their goroutines to finish and
// unregisters them. Probes passed to Run later never run.
func (p *Prober) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	for _, pr := range p.sorted() {
		pr.Close()
	}
	return nil
}

func (p *Prober) unregister(pr *Probe) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.probes[pr.name] == pr {
		delete(p.probes, pr.name)
	}
}
