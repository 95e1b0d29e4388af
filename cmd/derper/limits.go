package main

import (
	"flag"
	"net"
	"net/http"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
)

// connLimits are the admission limits of the main listener (openderp
// additions; see docs/security.md#limits). Every default keeps honest
// clients working, including many nodes behind one NAT address.
type connLimits struct {
	handshakeTimeout  time.Duration
	maxConns          int
	maxPending        int
	maxConnsPerIP     int
	maxPendingPerIP   int
	maxConnsPerKey    int
	maxHeaderBytes    int
	readHeaderTimeout time.Duration
}

// Defaults of the limit flags.
const (
	defaultHandshakeTimeout  = 10 * time.Second
	defaultMaxPending        = 20000
	defaultMaxPendingPerIP   = 512
	defaultMaxHeaderBytes    = 16 << 10
	defaultReadHeaderTimeout = 10 * time.Second
)

func registerLimitFlags(fs *flag.FlagSet, l *connLimits) {
	fs.DurationVar(&l.handshakeTimeout, "handshake-timeout", defaultHandshakeTimeout, "openderp only: close a connection that has not finished the HTTP upgrade and DERP handshake within this time; 0 disables")
	fs.IntVar(&l.maxConns, "max-conns", 0, "openderp only: maximum open connections on the main listener; 0 means no limit")
	fs.IntVar(&l.maxPending, "max-pending-conns", defaultMaxPending, "openderp only: maximum connections still in their upgrade or handshake; 0 means no limit")
	fs.IntVar(&l.maxConnsPerIP, "max-conns-per-ip", 0, "openderp only: maximum open connections from one IPv4 address or IPv6 /64; 0 means no limit")
	fs.IntVar(&l.maxPendingPerIP, "max-pending-conns-per-ip", defaultMaxPendingPerIP, "openderp only: maximum connections in their upgrade or handshake from one IPv4 address or IPv6 /64; 0 means no limit")
	fs.IntVar(&l.maxConnsPerKey, "max-conns-per-key", derp.DefaultMaxConnsPerKey, "openderp only: maximum simultaneous connections presenting one node key; further ones are refused after their handshake; 0 means the default")
	fs.IntVar(&l.maxHeaderBytes, "max-header-bytes", defaultMaxHeaderBytes, "openderp only: maximum size of HTTP request headers")
	fs.DurationVar(&l.readHeaderTimeout, "read-header-timeout", defaultReadHeaderTimeout, "openderp only: time allowed to read HTTP request headers")
}

// applyServer sets the limits that the DERP server itself enforces.
func (l connLimits) applyServer(s *derp.Server) {
	s.MaxConnsPerKey = l.maxConnsPerKey
}

// limitListener wraps ln with the admission limits.
func (l connLimits) listener(ln net.Listener) *derphttp.LimitListener {
	return derphttp.NewLimitListener(ln, derphttp.Limits{
		HandshakeTimeout: l.handshakeTimeout,
		MaxConns:         l.maxConns,
		MaxPending:       l.maxPending,
		MaxConnsPerIP:    l.maxConnsPerIP,
		MaxPendingPerIP:  l.maxPendingPerIP,
	})
}

// apply sets srv's header limits and lets ll see each connection's
// handshake end.
func (l connLimits) apply(srv *http.Server, ll *derphttp.LimitListener) {
	srv.MaxHeaderBytes = l.maxHeaderBytes
	srv.ReadHeaderTimeout = l.readHeaderTimeout
	srv.ConnContext = ll.ConnContext
	srv.Handler = ll.Handler(srv.Handler)
}
