package prober

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openderp/openderp/derp"
)

const (
	// qdInterval is the queuing-delay probe's interval: continuous, with a
	// 10 s pause after a run ends (on an error).
	qdInterval = -10 * time.Second
	// qdPacketSize is the size of a queuing-delay packet, about that of a
	// disco CallMeMaybe.
	qdPacketSize = 260
	// qdOnceWindow is how long a queuing-delay probe sends in once mode
	// before it waits for the last packets and reports.
	qdOnceWindow = 2 * time.Second
)

// qdBuckets are the upper bounds of the delay histogram, in seconds.
var qdBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}

// qdStats are one queuing-delay probe's metrics, kept across runs.
type qdStats struct {
	mu      sync.Mutex
	counts  []uint64 // guarded by mu; per bucket, not cumulative; last is +Inf
	count   uint64   // guarded by mu
	sum     float64  // guarded by mu; seconds
	dropped uint64   // guarded by mu
}

func (s *qdStats) observe(delay time.Duration) {
	secs := delay.Seconds()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts == nil {
		s.counts = make([]uint64, len(qdBuckets)+1)
	}
	i := 0
	for i < len(qdBuckets) && secs > qdBuckets[i] {
		i++
	}
	s.counts[i]++
	s.count++
	s.sum += secs
}

func (s *qdStats) drop(n int) {
	s.mu.Lock()
	s.dropped += uint64(n)
	s.mu.Unlock()
}

func (s *qdStats) metrics(ns string, labels Labels) []prometheus.Metric {
	s.mu.Lock()
	buckets := make(map[float64]uint64, len(qdBuckets))
	var cum uint64
	for i, ub := range qdBuckets {
		if s.counts != nil {
			cum += s.counts[i]
		}
		buckets[ub] = cum
	}
	count, sum, dropped := s.count, s.sum, s.dropped
	s.mu.Unlock()
	hDesc := prometheus.NewDesc(prometheus.BuildFQName(ns, "", "derp_qd_probe_delays_seconds"),
		"Delay of queuing-delay probe packets, in seconds.", nil, prometheus.Labels(labels))
	dDesc := prometheus.NewDesc(prometheus.BuildFQName(ns, "", "derp_qd_probe_dropped_packets"),
		"Queuing-delay probe packets counted as dropped.", nil, prometheus.Labels(labels))
	return []prometheus.Metric{
		prometheus.MustNewConstHistogram(hDesc, count, sum, buckets),
		prometheus.MustNewConstMetric(dDesc, prometheus.CounterValue, float64(dropped)),
	}
}

// qdClass returns the continuous queuing-delay probe from node from to
// node to.
func (d *DERPProber) qdClass(from, to string) ProbeClass {
	st := new(qdStats)
	return ProbeClass{
		Class:   "derp_qd",
		Probe:   func(ctx context.Context) error { return d.probeQD(ctx, from, to, st) },
		Metrics: st.metrics,
	}
}

// txRecord is a packet sent and not yet received or dropped.
type txRecord struct {
	seq  uint64
	sent time.Time
}

// txRecords are the packets in flight, oldest first, at most cap.
type txRecords struct {
	mu   sync.Mutex
	recs []txRecord // guarded by mu
	cap  int
}

// add records a send, first dropping records older than timeout and, if
// the list is still full, the oldest. It returns how many it dropped and
// whether it had to evict.
func (t *txRecords) add(r txRecord, timeout time.Duration) (dropped int, overflow bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	dropped = t.expireLocked(r.sent, timeout)
	if len(t.recs) >= t.cap {
		t.recs = t.recs[1:]
		dropped++
		overflow = true
	}
	t.recs = append(t.recs, r)
	return dropped, overflow
}

// expire drops records older than timeout at now and returns how many.
func (t *txRecords) expire(now time.Time, timeout time.Duration) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.expireLocked(now, timeout)
}

func (t *txRecords) expireLocked(now time.Time, timeout time.Duration) int {
	n := 0
	for n < len(t.recs) && now.Sub(t.recs[n].sent) > timeout {
		n++
	}
	t.recs = append(t.recs[:0], t.recs[n:]...)
	return n
}

// take removes the record of seq and returns its send time.
func (t *txRecords) take(seq uint64) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, r := range t.recs {
		if r.seq == seq {
			t.recs = append(t.recs[:i], t.recs[i+1:]...)
			return r.sent, true
		}
	}
	return time.Time{}, false
}

func (t *txRecords) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.recs)
}

// probeQD streams packets from node from to node to until an error or ctx
// ends. In once mode it sends for qdOnceWindow, waits for the packets in
// flight, and fails if any was dropped.
func (d *DERPProber) probeQD(ctx context.Context, from, to string, st *qdStats) error {
	fromNode, fromRegion, err := d.node(from)
	if err != nil {
		return err
	}
	toNode, toRegion, err := d.node(to)
	if err != nil {
		return err
	}
	fromc, err := d.connectNode(ctx, fromRegion, fromNode, false)
	if err != nil {
		return err
	}
	defer fromc.Close()
	toc, err := d.connectNode(ctx, toRegion, toNode, false)
	if err != nil {
		return err
	}
	defer toc.Close()
	if from != to {
		t := time.NewTimer(meshSettle)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		fromc.Close()
		toc.Close()
	})
	defer stop()

	rate := max(d.qdRate, 1)
	timeout := d.qdTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	recs := &txRecords{cap: int(math.Ceil(float64(rate)*timeout.Seconds())) + 1}
	var sent, dropped int
	drop := func(n int) {
		if n > 0 {
			dropped += n
			st.drop(n)
		}
	}

	errc := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() { // receiver
		src := fromc.SelfPublicKey()
		for {
			m, err := toc.Recv()
			if err != nil {
				errc <- fmt.Errorf("receiving: %w", err)
				return
			}
			switch m := m.(type) {
			case derp.ReceivedPacket:
				if m.Source != src {
					errc <- fmt.Errorf("packet from unexpected source %s; want %s", m.Source.ShortString(), src.ShortString())
					return
				}
				if len(m.Data) < 8 {
					continue
				}
				if at, ok := recs.take(binary.BigEndian.Uint64(m.Data)); ok {
					st.observe(time.Since(at))
				}
			case derp.KeepAliveMessage:
			default:
				d.p.logf("queuing delay probe: unexpected %T", m)
			}
		}
	})
	defer wg.Wait()
	defer cancel()

	pkt := make([]byte, qdPacketSize)
	rand.Read(pkt)
	dst := toc.SelfPublicKey()
	tick := time.NewTicker(max(time.Second/time.Duration(rate), time.Microsecond))
	defer tick.Stop()
	var onceEnd <-chan time.Time
	if d.p.once {
		t := time.NewTimer(qdOnceWindow)
		defer t.Stop()
		onceEnd = t.C
	}
	for seq := uint64(0); ; seq++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errc:
			return err
		case <-onceEnd:
			return d.qdFinish(ctx, recs, timeout, sent, dropped, st, errc)
		case <-tick.C:
		}
		binary.BigEndian.PutUint64(pkt, seq)
		n, overflow := recs.add(txRecord{seq: seq, sent: time.Now()}, timeout)
		drop(n)
		if overflow {
			d.p.logf("unexpected: overflow in txRecords")
		}
		if err := fromc.Send(dst, pkt); err != nil {
			return fmt.Errorf("sending packet %d: %w", seq, err)
		}
		sent++
	}
}

// qdFinish waits, in once mode, for the packets in flight to arrive or
// time out, and fails if any was dropped.
func (d *DERPProber) qdFinish(ctx context.Context, recs *txRecords, timeout time.Duration, sent, dropped int, st *qdStats, errc <-chan error) error {
	deadline := time.Now().Add(timeout)
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for recs.len() > 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errc:
			return err
		case <-poll.C:
		}
	}
	if n := recs.expire(time.Now().Add(timeout+time.Nanosecond), timeout); n > 0 {
		st.drop(n)
		dropped += n
	}
	if dropped > 0 {
		return fmt.Errorf("%d of %d queuing-delay packets dropped", dropped, sent)
	}
	if sent == 0 {
		return errors.New("no queuing-delay packets sent")
	}
	return nil
}
