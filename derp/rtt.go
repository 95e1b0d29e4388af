package derp

import (
	"net"
	"time"
)

// rttInterval is how often the server samples the kernel's round-trip
// time estimate of every client connection.
const rttInterval = 10 * time.Second

// RTT sampling states of a connection, owned by the sampler goroutine.
const (
	rttUnknown = iota // not sampled yet
	rttTCP            // a TCP socket that answered
	rttNone           // not TCP, or the first read failed: never sample
)

// startRTTSampler starts the goroutine that feeds the tcp_rtt metric. It
// runs until Close. One goroutine serves every connection, so idle
// connections cost no timers.
func (s *Server) startRTTSampler() {
	if s.env.disableRTT {
		return
	}
	s.rttOnce.Do(func() {
		s.background.Add(1)
		go func() {
			defer s.background.Done()
			t := time.NewTicker(rttInterval)
			defer t.Stop()
			for {
				select {
				case <-s.rttStop:
					return
				case <-t.C:
					s.sampleRTTs()
				}
			}
		}()
	})
}

func (s *Server) sampleRTTs() {
	s.mu.Lock()
	var conns []*sclient
	for _, set := range s.clients {
		set.forEach(func(c *sclient) { conns = append(conns, c) })
	}
	s.mu.Unlock()
	for _, c := range conns {
		s.sampleRTT(c)
	}
}

// initRTT classifies a new connection before it is registered (so before
// the sampler can see it): a connection that is not TCP counts non-tcp
// once, and one whose first TCP_INFO read fails counts error once; neither
// is sampled again. Counting here rather than at the first sample counts
// connections that end within the first interval too, as the reference
// does. Where RTTs cannot be read at all (rttSupported false) nothing is
// counted.
func (s *Server) initRTT(c *sclient) {
	if !rttSupported {
		c.rttState = rttNone
		return
	}
	tcp := unwrapTCP(c.nc)
	if tcp == nil {
		c.rttState = rttNone
		s.metrics.tcpRTT.Add("non-tcp", 1)
		return
	}
	if _, err := tcpRTT(tcp); err != nil {
		c.rttState = rttNone
		s.metrics.tcpRTT.Add("error", 1)
		return
	}
	c.rttState = rttTCP
}

func (s *Server) sampleRTT(c *sclient) {
	if c.rttState != rttTCP {
		return
	}
	tcp := unwrapTCP(c.nc)
	if tcp == nil {
		return
	}
	rtt, err := tcpRTT(tcp)
	if err != nil {
		return // the connection is going away
	}
	s.metrics.tcpRTT.Add(rttBucket(rtt), 1)
}

// rttBucket returns the tcp_rtt label for rtt.
func rttBucket(rtt time.Duration) string {
	for _, b := range []struct {
		max   time.Duration
		label string
	}{
		{10 * time.Millisecond, "10ms"},
		{20 * time.Millisecond, "20ms"},
		{50 * time.Millisecond, "50ms"},
		{100 * time.Millisecond, "100ms"},
		{150 * time.Millisecond, "150ms"},
		{250 * time.Millisecond, "250ms"},
		{500 * time.Millisecond, "500ms"},
	} {
		if rtt <= b.max {
			return b.label
		}
	}
	return "inf"
}

// unwrapTCP finds the TCP connection under nc, looking through TLS and
// other wrappers that expose NetConn, or returns nil.
func unwrapTCP(nc Conn) *net.TCPConn {
	var x any = nc
	for range 8 {
		switch v := x.(type) {
		case *net.TCPConn:
			return v
		case interface{ NetConn() net.Conn }:
			x = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}
