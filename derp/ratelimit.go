package derp

import (
	"context"
	"expvar"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// RateLimit is a per-connection limit on the bytes a server reads from
// each client (see Server.SetPerClientRateLimit).
type RateLimit struct {
	// BytesPerSecond is the sustained rate; 0 turns limiting off.
	BytesPerSecond uint64
	// BurstBytes is the bucket depth. It is raised to at least the size
	// of a maximal frame (65,568 bytes) whenever BytesPerSecond is set.
	BurstBytes uint64
}

// minRateBurst is the smallest bucket that admits every frame a client
// may send: a maximal SendPacket.
const minRateBurst = maxUnknownFrameLen

// normalize returns the limit as applied: all zeros when off, else with
// the burst raised to minRateBurst.
func (l RateLimit) normalize() RateLimit {
	if l.BytesPerSecond == 0 {
		return RateLimit{}
	}
	l.BurstBytes = min(max(l.BurstBytes, minRateBurst), math.MaxInt32)
	return l
}

// rateLimitState is the server's current limit.
type rateLimitState struct {
	cur     atomic.Pointer[RateLimit] // nil until configured; normalized
	publish sync.Once                 // adds the rate-limit metrics
}

// SetPerClientRateLimit limits how fast the server reads from each client
// that is not a mesh peer. Before reading a frame's payload the read loop
// takes min(payload length, 65,568) tokens from the connection's own
// bucket, waiting while there are too few: the client is slowed by TCP
// back-pressure, and nothing is dropped or signalled. Handshake frames and
// empty frames are free.
//
// The limit applies at once to existing connections and to new ones.
// Unlike the reference, which gives every connection a fresh, full bucket
// on each change, a change keeps each bucket's level. The first call also
// publishes the rate_limit_per_client_* metrics in the "derp" set.
func (s *Server) SetPerClientRateLimit(l RateLimit) {
	l = l.normalize()
	s.rateLimit.cur.Store(&l)
	s.rateLimit.publish.Do(func() {
		rl := &s.rateLimit
		s.vars.Set("rate_limit_per_client_bytes_per_second", expvar.Func(func() any { return rl.cur.Load().BytesPerSecond }))
		s.vars.Set("rate_limit_per_client_burst_bytes", expvar.Func(func() any { return rl.cur.Load().BurstBytes }))
		s.vars.Set("rate_limit_per_client_waited", &s.metrics.rateLimitWaited)
	})
}

// PerClientRateLimit returns the limit in force, as applied (the burst
// raised, all zeros when off).
func (s *Server) PerClientRateLimit() RateLimit {
	if l := s.rateLimit.cur.Load(); l != nil {
		return *l
	}
	return RateLimit{}
}

// recvLimiter is a connection's token bucket, owned by its read loop.
type recvLimiter struct {
	applied *RateLimit    // the server limit lim was last set from
	lim     *rate.Limiter // nil when unlimited
}

// waitRecvLimit charges a frame of n payload bytes to c's bucket, waiting
// until it may be read. It returns early only if ctx ends or the server
// closes.
func (c *sclient) waitRecvLimit(ctx context.Context, n uint32) error {
	if n == 0 || c.canMesh {
		return nil
	}
	rl := &c.recvLimit
	if cur := c.s.rateLimit.cur.Load(); cur != rl.applied {
		rl.apply(cur)
	}
	if rl.lim == nil {
		return nil
	}
	cost := int(min(n, minRateBurst))
	now := time.Now()
	if rl.lim.AllowN(now, cost) {
		return nil
	}
	c.s.metrics.rateLimitWaited.Add(1)
	r := rl.lim.ReserveN(now, cost)
	t := time.NewTimer(r.DelayFrom(now))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return ctx.Err()
	case <-c.s.closing:
		return ErrServerClosed
	}
}

func (rl *recvLimiter) apply(cur *RateLimit) {
	rl.applied = cur
	if cur == nil || cur.BytesPerSecond == 0 {
		rl.lim = nil
		return
	}
	if rl.lim == nil {
		rl.lim = rate.NewLimiter(rate.Limit(cur.BytesPerSecond), int(cur.BurstBytes))
		return
	}
	rl.lim.SetLimit(rate.Limit(cur.BytesPerSecond))
	rl.lim.SetBurst(int(cur.BurstBytes))
}
