package stunserver

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

// Amplification limits. A binding request can be as short as its 20-byte
// header, while the answer is 32 bytes (IPv4) or 44 bytes (IPv6), so a
// forged source address turns the server into a small reflector. Every
// response larger than its request spends its excess bytes from a token
// bucket of the sender's address (IPv4 address or IPv6 /64); when the
// bucket is empty the request is dropped and counted. Tailscale clients
// send 40-byte requests: their IPv4 answers cost nothing and their IPv6
// answers 4 bytes each. See docs/security.md#stun-amplification.
const (
	// DefaultAmplificationRate is the excess response bytes a source
	// earns per second: 100 bare 20-byte IPv4 requests a second.
	DefaultAmplificationRate = 1200
	// DefaultAmplificationBurst is the excess a source may spend at once.
	DefaultAmplificationBurst = 4 * DefaultAmplificationRate

	// ampSlots is the size of the bucket table. Sources are hashed into
	// it with a per-server seed, so memory is fixed whatever the number
	// of senders; sources sharing a slot share its budget, which can only
	// make the limit stricter.
	ampSlots = 4096
)

// ampLimiter holds the token buckets. Safe for concurrent use.
type ampLimiter struct {
	rate  float64 // tokens (bytes) per second; set once; <= 0 disables
	burst float64 // set once
	seed  maphash.Seed
	start time.Time

	mu    sync.Mutex
	slots [ampSlots]ampBucket // guarded by mu
}

type ampBucket struct {
	tokens float64
	last   int64 // nanoseconds since start; 0: never used (full)
}

func newAmpLimiter(rate, burst int) *ampLimiter {
	return &ampLimiter{rate: float64(rate), burst: float64(burst), seed: maphash.MakeSeed(), start: time.Now()}
}

// allow reports whether src may receive excess bytes more than it sent.
// It does not allocate.
func (l *ampLimiter) allow(src netip.Addr, excess int) bool {
	if excess <= 0 || l.rate <= 0 {
		return true
	}
	a16 := src.As16()
	k := a16[:]
	if !src.Is4() && !src.Is4In6() {
		k = k[:8] // one budget per IPv6 /64
	}
	i := maphash.Bytes(l.seed, k) % ampSlots
	now := int64(time.Since(l.start)) + 1

	l.mu.Lock()
	defer l.mu.Unlock()
	b := &l.slots[i]
	if b.last == 0 {
		b.tokens = l.burst
	} else {
		b.tokens = min(l.burst, b.tokens+float64(now-b.last)/1e9*l.rate)
	}
	b.last = now
	if b.tokens < float64(excess) {
		return false
	}
	b.tokens -= float64(excess)
	return true
}
