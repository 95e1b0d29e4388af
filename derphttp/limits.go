package derphttp

import (
	"context"
	"crypto/tls"
	"expvar"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/internal/acceptretry"
)

// Limits bounds the connections a DERP front end admits. A connection is
// pending from the moment it is accepted until its client has finished the
// HTTP upgrade and the DERP handshake and been registered (or, for an
// ordinary HTTP request such as /generate_204, until the request headers
// have been read). The zero value of a field turns its limit off.
//
// See docs/security.md#limits for the defaults derper uses and why they
// keep honest clients working.
type Limits struct {
	// HandshakeTimeout closes a connection still pending this long after
	// it was accepted.
	HandshakeTimeout time.Duration
	// MaxConns bounds open connections, pending or not.
	MaxConns int
	// MaxPending bounds pending connections.
	MaxPending int
	// MaxConnsPerIP bounds open connections from one IPv4 address or
	// IPv6 /64.
	MaxConnsPerIP int
	// MaxPendingPerIP bounds pending connections from one IPv4 address
	// or IPv6 /64.
	MaxPendingPerIP int
}

// Reasons a LimitListener refuses or closes a connection; the labels of
// its counter_rejected metric.
const (
	RejectMaxConns        = "max_conns"
	RejectMaxPending      = "max_pending"
	RejectMaxConnsPerIP   = "max_conns_per_ip"
	RejectMaxPendingPerIP = "max_pending_per_ip"
)

// A LimitListener enforces Limits on the connections of a net.Listener.
// Refused connections are closed at once and counted. An accepted TCP
// connection is handed to Accept only once its first byte has arrived
// (on Linux; elsewhere at once), so that a connection that never speaks
// costs a small goroutine and no HTTP server buffers.
//
// For the handshake to end a connection's pending state, serve it with an
// http.Server whose ConnContext is the listener's ConnContext and whose
// handler is wrapped by the listener's Handler.
type LimitListener struct {
	ln  net.Listener // set once
	lim Limits       // set once
	tls *TLSOptions  // set once; nil unless the listener does TLS handshakes

	h  *acceptretry.Handoff // connections ready to serve, to Accept; ended by Close or by ln failing
	wg sync.WaitGroup       // the accept loop and every gate

	mu      sync.Mutex
	open    int                     // guarded by mu
	pending int                     // guarded by mu
	perIP   map[netip.Prefix]*ipUse // guarded by mu
	gating  map[*limitConn]struct{} // guarded by mu; waiting for a first byte
	closed  bool                    // guarded by mu

	accepted, timeouts, handshakes expvar.Int
	handshakesTLS, tlsErrors       expvar.Int
	rejected                       expvar.Map // by Reject* label
	vars                           *expvar.Map
}

type ipUse struct{ open, pending int }

// NewLimitListener returns a listener that accepts from ln within lim. It
// starts accepting at once; Close stops it.
func NewLimitListener(ln net.Listener, lim Limits) *LimitListener {
	return newLimitListener(ln, lim, nil)
}

func newLimitListener(ln net.Listener, lim Limits, tlsOpts *TLSOptions) *LimitListener {
	l := &LimitListener{
		ln:     ln,
		lim:    lim,
		tls:    tlsOpts,
		h:      acceptretry.NewHandoff(),
		perIP:  make(map[netip.Prefix]*ipUse),
		gating: make(map[*limitConn]struct{}),
	}
	for _, r := range []string{RejectMaxConns, RejectMaxPending, RejectMaxConnsPerIP, RejectMaxPendingPerIP} {
		l.rejected.Set(r, new(expvar.Int))
	}
	l.vars = new(expvar.Map)
	l.vars.Set("gauge_open_connections", expvar.Func(func() any { o, _ := l.Counts(); return o }))
	l.vars.Set("gauge_pending_connections", expvar.Func(func() any { _, p := l.Counts(); return p }))
	l.vars.Set("counter_accepted", &l.accepted)
	l.vars.Set("counter_handshakes_done", &l.handshakes)
	l.vars.Set("counter_handshake_timeouts", &l.timeouts)
	l.vars.Set("counter_rejected", &l.rejected)
	if tlsOpts != nil {
		l.vars.Set("counter_tls_handshakes", &l.handshakesTLS)
		l.vars.Set("counter_tls_handshake_errors", &l.tlsErrors)
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// ExpVar returns the listener's metrics: gauges of open and pending
// connections, counters of accepted connections, completed handshakes,
// handshake timeouts, and refusals by reason (counter_rejected); a
// listener made by NewTLSLimitListener adds counters of completed and of
// failed TLS handshakes.
func (l *LimitListener) ExpVar() *expvar.Map { return l.vars }

// Counts returns the number of open and of pending connections.
func (l *LimitListener) Counts() (open, pending int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open, l.pending
}

// Accept returns the next admitted connection that has sent something.
func (l *LimitListener) Accept() (net.Conn, error) { return l.h.Accept() }

// Addr returns the inner listener's address.
func (l *LimitListener) Addr() net.Addr { return l.ln.Addr() }

// Close closes the inner listener and every connection not yet handed to
// Accept, and waits for the listener's goroutines to end. Connections
// already returned by Accept are the caller's.
func (l *LimitListener) Close() error {
	var err error
	if l.h.End(nil) {
		err = l.ln.Close()
	}
	// Gates wait in the poller, not on the handoff: close their
	// connections.
	l.mu.Lock()
	l.closed = true
	gating := make([]*limitConn, 0, len(l.gating))
	for c := range l.gating {
		gating = append(gating, c)
	}
	l.mu.Unlock()
	for _, c := range gating {
		c.Close()
	}
	l.wg.Wait()
	return err
}

func (l *LimitListener) acceptLoop() {
	defer l.wg.Done()
	acceptretry.Run(l.ln, l.h, func(c net.Conn) {
		if lc := l.admit(c); lc != nil {
			l.wg.Add(1)
			go l.gate(lc)
		}
	})
}

// ipKey is what per-IP limits count by: the IPv4 address, or the IPv6
// /64 (one site's worth of addresses).
func ipKey(a net.Addr) netip.Prefix {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Prefix{}
	}
	ip := ap.Addr().Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// admit applies the limits to a new connection: it returns the tracked
// connection, or closes c and returns nil.
func (l *LimitListener) admit(c net.Conn) *limitConn {
	key := ipKey(c.RemoteAddr())
	reason := ""
	l.mu.Lock()
	u := l.perIP[key]
	if u == nil {
		u = new(ipUse)
	}
	switch {
	case l.lim.MaxConns > 0 && l.open >= l.lim.MaxConns:
		reason = RejectMaxConns
	case l.lim.MaxPending > 0 && l.pending >= l.lim.MaxPending:
		reason = RejectMaxPending
	case l.lim.MaxConnsPerIP > 0 && u.open >= l.lim.MaxConnsPerIP:
		reason = RejectMaxConnsPerIP
	case l.lim.MaxPendingPerIP > 0 && u.pending >= l.lim.MaxPendingPerIP:
		reason = RejectMaxPendingPerIP
	case l.closed:
		reason = "closed"
	default:
		l.perIP[key] = u
		u.open++
		u.pending++
		l.open++
		l.pending++
	}
	var lc *limitConn
	if reason == "" {
		lc = &limitConn{Conn: c, l: l, key: key}
		l.gating[lc] = struct{}{}
		if d := l.lim.HandshakeTimeout; d > 0 {
			lc.timer = time.AfterFunc(d, lc.handshakeExpired)
		}
	}
	l.mu.Unlock()
	if reason != "" {
		if reason != "closed" {
			l.rejected.Add(reason, 1)
		}
		c.Close()
		return nil
	}
	l.accepted.Add(1)
	return lc
}

// gate waits for lc's first byte, then hands it to the TLS handshake if
// the listener does those; a plain connection it hands to Accept once its
// whole request header has arrived (see waitRequestHead).
func (l *LimitListener) gate(lc *limitConn) {
	defer l.wg.Done()
	if l.tls != nil {
		if err := waitReadable(lc.Conn); err == nil {
			l.tlsHandshake(lc)
			return
		}
		l.forget(lc)
		lc.Close()
		return
	}
	err := waitRequestHead(lc.Conn)
	l.forget(lc)
	if err != nil {
		lc.Close()
		return
	}
	if !l.h.Give(lc) {
		lc.Close()
	}
}

// forget stops tracking lc as waiting in a gate: it is handed over or
// closed next.
func (l *LimitListener) forget(lc *limitConn) {
	l.mu.Lock()
	delete(l.gating, lc)
	l.mu.Unlock()
}

// ConnContext is for http.Server.ConnContext: it lets the DERP server
// (derp.WithHandshakeDone) and Handler find the connection c.
func (l *LimitListener) ConnContext(ctx context.Context, c net.Conn) context.Context {
	lc := findLimitConn(c)
	if lc == nil {
		return ctx
	}
	ctx = derp.WithHandshakeDone(ctx, lc.handshakeDone)
	return context.WithValue(ctx, limitConnKey{}, lc)
}

// Handler wraps h so that a request that does not ask for an upgrade ends
// its connection's pending state: from then on the connection is an
// ordinary HTTP connection, bounded by the HTTP server's timeouts.
func (l *LimitListener) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			if lc, ok := r.Context().Value(limitConnKey{}).(*limitConn); ok {
				lc.handshakeDone()
			}
		}
		h.ServeHTTP(w, r)
	})
}

type limitConnKey struct{}

// findLimitConn looks through TLS and other wrappers for a *limitConn.
func findLimitConn(c net.Conn) *limitConn {
	for range 8 {
		switch v := c.(type) {
		case *limitConn:
			return v
		case *tls.Conn:
			c = v.NetConn()
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// Connection states.
const (
	statePending int32 = iota
	stateDone          // handshake completed; counted as open only
	stateClosed
)

// limitConn is a connection admitted by a LimitListener.
type limitConn struct {
	net.Conn
	l     *LimitListener // set once
	key   netip.Prefix   // set once
	timer *time.Timer    // guarded by l.mu; nil without a handshake timeout
	state atomic.Int32
}

// NetConn returns the underlying connection, so that code looking for the
// TCP socket (RTT sampling, socket options) finds it.
func (c *limitConn) NetConn() net.Conn { return c.Conn }

func (c *limitConn) handshakeDone() {
	if !c.state.CompareAndSwap(statePending, stateDone) {
		return
	}
	c.l.handshakes.Add(1)
	c.l.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.l.pending--
	c.l.perIP[c.key].pending--
	c.l.mu.Unlock()
}

func (c *limitConn) handshakeExpired() {
	if c.state.Load() == statePending {
		c.l.timeouts.Add(1)
		c.Close()
	}
}

// Close closes the connection and releases its place in the limits.
func (c *limitConn) Close() error {
	for {
		st := c.state.Load()
		if st == stateClosed {
			return c.Conn.Close()
		}
		if c.state.CompareAndSwap(st, stateClosed) {
			l := c.l
			l.mu.Lock()
			if c.timer != nil {
				c.timer.Stop()
			}
			delete(l.gating, c)
			l.open--
			u := l.perIP[c.key]
			u.open--
			if st == statePending {
				l.pending--
				u.pending--
			}
			if u.open == 0 {
				delete(l.perIP, c.key)
			}
			l.mu.Unlock()
			return c.Conn.Close()
		}
	}
}
