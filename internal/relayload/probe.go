package relayload

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/openderp/openderp/derphttp"
)

const (
	probeSize       = 64
	probeTimeout    = time.Second
	maxProbeSamples = 1 << 18
	defaultRTTGap   = 10 * time.Millisecond
)

// probe times round trips a → server → b → server → a, one at a time.
type probe struct {
	a, b  *derphttp.Client
	gap   time.Duration
	hello chan struct{} // closed when b has seen a's hello
	reply chan uint64   // sequence numbers echoed back to a

	mu      sync.Mutex
	samples []time.Duration // guarded by mu
	lost    int             // guarded by mu
}

func newProbe(gap time.Duration) *probe {
	if gap == 0 {
		gap = defaultRTTGap
	}
	return &probe{gap: gap, hello: make(chan struct{}), reply: make(chan uint64, 1)}
}

// onReply is a's packet handler.
func (pr *probe) onReply(kind byte, data []byte) {
	if kind != kindProbe || len(data) < 9 {
		return
	}
	select {
	case pr.reply <- binary.BigEndian.Uint64(data[1:9]):
	default:
	}
}

// run sends probes until the run stops.
func (pr *probe) run(r *run) {
	pkt := make([]byte, probeSize)
	pkt[0] = kindProbe
	dst := pr.b.SelfPublicKey()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	// The first probe goes out even if the run has already stopped (a
	// short run on a busy machine may stop before this goroutine is
	// scheduled), so that every run times at least one round trip.
	for seq := uint64(1); seq == 1 || !r.stopped(); seq++ {
		binary.BigEndian.PutUint64(pkt[1:9], seq)
		t0 := time.Now()
		if err := pr.a.Send(dst, pkt); err != nil {
			if !r.stopped() {
				r.fail(fmt.Errorf("relayload: sending probe: %w", err))
			}
			return
		}
		t.Reset(probeTimeout)
	wait:
		for {
			select {
			case got := <-pr.reply:
				if got != seq {
					continue // a late answer to an earlier probe
				}
				pr.add(time.Since(t0))
				break wait
			case <-t.C:
				pr.mu.Lock()
				pr.lost++
				pr.mu.Unlock()
				break wait
			case <-r.stopCh:
				pr.finishFirst(seq, t0, t)
				return
			}
		}
		t.Reset(pr.gap)
		select {
		case <-t.C:
		case <-r.stopCh:
			return
		}
	}
}

// finishFirst lets the run's first round trip, still outstanding when the
// run stops, complete within probeTimeout (t is already running), so that
// a short run on a busy machine still reports a sample unless the probe
// was really lost. Later outstanding probes are abandoned.
func (pr *probe) finishFirst(seq uint64, t0 time.Time, t *time.Timer) {
	pr.mu.Lock()
	first := len(pr.samples) == 0 && pr.lost == 0
	pr.mu.Unlock()
	if !first {
		return
	}
	for {
		select {
		case got := <-pr.reply:
			if got == seq {
				pr.add(time.Since(t0))
				return
			}
		case <-t.C:
			pr.mu.Lock()
			pr.lost++
			pr.mu.Unlock()
			return
		}
	}
}

func (pr *probe) add(d time.Duration) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if len(pr.samples) < maxProbeSamples {
		pr.samples = append(pr.samples, d)
	}
}

func (pr *probe) summary() RTT {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	s := slices.Clone(pr.samples)
	slices.Sort(s)
	return RTT{
		Samples: len(s),
		Lost:    pr.lost,
		P50:     ms(percentile(s, 0.50)),
		P90:     ms(percentile(s, 0.90)),
		P99:     ms(percentile(s, 0.99)),
		Max:     ms(percentile(s, 1)),
	}
}

// percentile returns the nearest-rank q-quantile of sorted s, 0 if empty.
func percentile(s []time.Duration, q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
