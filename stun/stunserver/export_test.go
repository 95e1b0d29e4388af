package stunserver

import (
	"net/netip"
	"time"
)

// SetBackoff shortens the pause after a read error.
func (s *Server) SetBackoff(d time.Duration) { s.backoff = d }

// Answer exposes the per-datagram logic.
func (s *Server) Answer(dst, pkt []byte, src netip.AddrPort) ([]byte, bool) {
	return s.answer(dst, pkt, src)
}

// SetServing sets a function Serve calls once its socket is set up
// (destination reporting enabled), before the first read.
func (s *Server) SetServing(f func()) { s.serving = f }
