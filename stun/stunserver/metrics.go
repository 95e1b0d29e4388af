package stunserver

import (
	"expvar"
	"sync/atomic"
)

// Metric names and labels used by the reference implementation for its
// expvar set "stun", so that existing dashboards keep working.
const (
	// ExpvarName is the name under which cmd/derper publishes ExpVar.
	ExpvarName = "stun"

	// MetricRequests counts datagrams by disposition (LabelDisposition):
	// DispositionReadError, DispositionNotSTUN, DispositionWriteError,
	// DispositionSuccess.
	MetricRequests   = "counter_requests"
	LabelDisposition = "disposition"

	// MetricAddrFamily counts answered requests by the sender's address
	// family (LabelFamily): FamilyIPv4 or FamilyIPv6.
	MetricAddrFamily = "counter_addrfamily"
	LabelFamily      = "family"

	DispositionReadError  = "read_error"
	DispositionNotSTUN    = "not_stun"
	DispositionWriteError = "write_error"
	DispositionSuccess    = "success"
	FamilyIPv4            = "ipv4"
	FamilyIPv6            = "ipv6"

	// MetricNoLocalAddr counts datagrams received with destination
	// reporting on whose local address could not be read; their replies
	// leave from the address the kernel picks.
	MetricNoLocalAddr = "counter_no_local_addr"

	// MetricAmplificationLimited counts valid requests left unanswered
	// because their source had spent its amplification budget (an
	// openderp addition; see docs/security.md#stun-amplification).
	MetricAmplificationLimited = "counter_amplification_limited"
)

// Metrics is a snapshot of a Server's counters.
type Metrics struct {
	ReadErrors  uint64 // socket reads that failed, other than on close
	NotSTUN     uint64 // datagrams dropped: not a valid binding request
	WriteErrors uint64 // responses the socket failed to send
	Success     uint64 // responses sent
	IPv4        uint64 // valid requests from IPv4 senders (IPv4-mapped included)
	IPv6        uint64 // valid requests from IPv6 senders
	NoLocalAddr uint64 // datagrams whose destination address was not reported
	AmpLimited  uint64 // valid requests refused by the amplification limit
}

// Requests returns the number of datagrams seen plus failed reads: the sum
// of all dispositions.
func (m Metrics) Requests() uint64 {
	return m.ReadErrors + m.NotSTUN + m.WriteErrors + m.Success
}

// counters are a Server's live counts. Written by the serving loop, read
// by anyone.
type counters struct {
	readErrors  atomic.Uint64
	notSTUN     atomic.Uint64
	writeErrors atomic.Uint64
	success     atomic.Uint64
	ipv4        atomic.Uint64
	ipv6        atomic.Uint64
	noLocalAddr atomic.Uint64
	ampLimited  atomic.Uint64
}

// Metrics returns the current counts. Counts accumulate over every Serve
// call on s.
func (s *Server) Metrics() Metrics {
	c := &s.counters
	return Metrics{
		ReadErrors:  c.readErrors.Load(),
		NotSTUN:     c.notSTUN.Load(),
		WriteErrors: c.writeErrors.Load(),
		Success:     c.success.Load(),
		IPv4:        c.ipv4.Load(),
		IPv6:        c.ipv6.Load(),
		NoLocalAddr: c.noLocalAddr.Load(),
		AmpLimited:  c.ampLimited.Load(),
	}
}

// ExpVar returns s's counters as an expvar.Map shaped like the reference's
// "stun" set:
//
//	{"counter_requests": {"read_error": 0, "not_stun": 0, "write_error": 0, "success": 0},
//	 "counter_addrfamily": {"ipv4": 0, "ipv6": 0},
//	 "counter_no_local_addr": 0, "counter_amplification_limited": 0}
//
// Every key is present from the start. The values are read live; the map
// is not published anywhere, which is up to the caller.
func (s *Server) ExpVar() expvar.Var {
	c := &s.counters
	requests := new(expvar.Map)
	requests.Set(DispositionReadError, counterVar(&c.readErrors))
	requests.Set(DispositionNotSTUN, counterVar(&c.notSTUN))
	requests.Set(DispositionWriteError, counterVar(&c.writeErrors))
	requests.Set(DispositionSuccess, counterVar(&c.success))
	families := new(expvar.Map)
	families.Set(FamilyIPv4, counterVar(&c.ipv4))
	families.Set(FamilyIPv6, counterVar(&c.ipv6))
	m := new(expvar.Map)
	m.Set(MetricRequests, requests)
	m.Set(MetricAddrFamily, families)
	m.Set(MetricNoLocalAddr, counterVar(&c.noLocalAddr))
	m.Set(MetricAmplificationLimited, counterVar(&c.ampLimited))
	return m
}

func counterVar(v *atomic.Uint64) expvar.Func {
	return func() any { return v.Load() }
}
