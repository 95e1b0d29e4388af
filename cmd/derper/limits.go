package main

import (
	"crypto/tls"
	"flag"
	"net"
	"net/http"
	"slices"
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
	return derphttp.NewLimitListener(ln, l.listenerLimits())
}

func (l connLimits) listenerLimits() derphttp.Limits {
	return derphttp.Limits{
		HandshakeTimeout: l.handshakeTimeout,
		MaxConns:         l.maxConns,
		MaxPending:       l.maxPending,
		MaxConnsPerIP:    l.maxConnsPerIP,
		MaxPendingPerIP:  l.maxPendingPerIP,
	}
}

// tlsListener is like listener but also completes each connection's TLS
// handshake with cfg before the HTTP server sees it, as srv.ServeTLS
// would: serve it with srv.Serve. Failed handshakes are logged to srv's
// ErrorLog with net/http's wording. See docs/performance.md#stalled-tls.
func (l connLimits) tlsListener(ln net.Listener, srv *http.Server) *derphttp.LimitListener {
	return derphttp.NewTLSLimitListener(ln, l.listenerLimits(),
		derphttp.TLSOptions{Config: serveTLSConfig(srv), ErrorLog: srv.ErrorLog})
}

// serveTLSConfig returns a copy of srv.TLSConfig offering the protocols
// srv serves, as http.Server.ServeTLS arranges: "h2" where HTTP/2 is on,
// "http/1.1" where HTTP/1 is.
func serveTLSConfig(srv *http.Server) *tls.Config {
	cfg := srv.TLSConfig.Clone()
	// Like net/http: without Protocols, HTTP/2 is on unless TLSNextProto
	// was set to turn it off.
	h1, h2 := true, srv.TLSNextProto == nil
	if p := srv.Protocols; p != nil {
		h1, h2 = p.HTTP1(), p.HTTP2()
	}
	protos := slices.DeleteFunc(slices.Clone(cfg.NextProtos), func(p string) bool {
		return (p == "h2" && !h2) || (p == "http/1.1" && !h1)
	})
	if h2 && !slices.Contains(protos, "h2") {
		protos = append(protos, "h2")
	}
	if h1 && !slices.Contains(protos, "http/1.1") {
		protos = append(protos, "http/1.1")
	}
	cfg.NextProtos = protos
	return cfg
}

// apply sets srv's header limits and lets ll see each connection's
// handshake end.
func (l connLimits) apply(srv *http.Server, ll *derphttp.LimitListener) {
	srv.MaxHeaderBytes = l.maxHeaderBytes
	srv.ReadHeaderTimeout = l.readHeaderTimeout
	srv.ConnContext = ll.ConnContext
	srv.Handler = ll.Handler(srv.Handler)
}
