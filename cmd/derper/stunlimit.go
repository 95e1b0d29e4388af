package main

import (
	"errors"
	"flag"

	"github.com/openderp/openderp/stun/stunserver"
)

// stunLimit is the STUN server's reflection bound (openderp only; see
// docs/security.md#stun-amplification): response bytes beyond the
// request's size that one source may receive.
type stunLimit struct {
	rate  int // bytes per second; 0 turns the bound off
	burst int // bytes
}

// minSTUNReflectBurst is the largest excess one answer can carry (a
// 44-byte IPv6 answer to a bare 20-byte request). A smaller burst would
// refuse every such request, so it is rejected as a mistake.
const minSTUNReflectBurst = 24

func registerSTUNLimitFlags(fs *flag.FlagSet, l *stunLimit) {
	fs.IntVar(&l.rate, "stun-reflect-limit", stunserver.DefaultAmplificationRate, "openderp only: STUN response bytes beyond the request's own size that one source (IPv4 address or IPv6 /64) may receive per second; requests over it go unanswered and are counted (stun counter_amplification_limited); Tailscale clients never reach it; 0 turns it off")
	fs.IntVar(&l.burst, "stun-reflect-burst", stunserver.DefaultAmplificationBurst, "openderp only: bytes of -stun-reflect-limit one source may spend at once")
}

// check reports flag values that cannot be meant.
func (l stunLimit) check() error {
	switch {
	case l.rate < 0:
		return errors.New("derper: -stun-reflect-limit must not be negative (0 turns it off)")
	case l.rate > 0 && l.burst < minSTUNReflectBurst:
		return errors.New("derper: -stun-reflect-burst must be at least 24 bytes (the excess of one IPv6 answer) while -stun-reflect-limit is on")
	}
	return nil
}

// apply sets the bound on s, before it serves.
func (l stunLimit) apply(s *stunserver.Server) {
	s.SetAmplificationLimit(l.rate, l.burst)
}
