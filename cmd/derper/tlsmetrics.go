package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"expvar"
	"net"
	"net/http"
	"sync"

	"github.com/openderp/openderp/internal/varz"
)

// tlsMetrics counts requests on the TLS listener by protocol version.
type tlsMetrics struct {
	requests varz.LabelMap // derper_tls_request_version
	active   varz.LabelMap // gauge_derper_tls_active_version
}

func newTLSMetrics() *tlsMetrics {
	m := &tlsMetrics{}
	m.requests.Label = "version"
	m.active.Label = "version"
	return m
}

func tlsVersionLabel(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "1.0"
	case tls.VersionTLS11:
		return "1.1"
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS13:
		return "1.3"
	}
	return "unknown"
}

// wrap records each request's TLS version, and keeps it in the active
// gauge for as long as the request lasts: until h returns, or, if h
// hijacks the connection (DERP, WebSocket), until that connection is
// closed, however long h itself runs.
func (m *tlsMetrics) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		label := "unknown"
		if r.TLS != nil {
			label = tlsVersionLabel(r.TLS.Version)
		}
		m.requests.Add(label, 1)
		m.active.Add(label, 1)
		tw := &trackedWriter{ResponseWriter: w}
		tw.release = sync.OnceFunc(func() { m.active.Add(label, -1) })
		defer tw.handlerDone()
		h.ServeHTTP(tw, r)
	})
}

// vars returns the metrics under their reference expvar names.
func (m *tlsMetrics) vars() map[string]expvar.Var {
	return map[string]expvar.Var{
		"derper_tls_request_version":      &m.requests,
		"gauge_derper_tls_active_version": &m.active,
	}
}

// trackedWriter runs release when its request is over: when the handler
// returns, or, after a hijack, when the hijacked connection is closed.
type trackedWriter struct {
	http.ResponseWriter
	release  func() // idempotent
	mu       sync.Mutex
	hijacked bool // guarded by mu
}

func (w *trackedWriter) handlerDone() {
	w.mu.Lock()
	h := w.hijacked
	w.mu.Unlock()
	if !h {
		w.release()
	}
}

// Hijack hands over the connection, wrapped so that closing it releases.
func (w *trackedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("derper: connection cannot be hijacked")
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.mu.Lock()
	w.hijacked = true
	w.mu.Unlock()
	return &releasingConn{Conn: nc, release: w.release}, brw, nil
}

// Flush passes flushes through for streaming debug pages.
func (w *trackedWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the other controls.
func (w *trackedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// releasingConn is a hijacked connection that releases its gauge slot on
// the first Close.
type releasingConn struct {
	net.Conn
	release func() // idempotent
}

func (c *releasingConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// NetConn returns the underlying connection, so code looking for the TCP
// socket (RTT sampling) finds it.
func (c *releasingConn) NetConn() net.Conn { return c.Conn }

// refuseConnect answers CONNECT requests on the TLS listener with 403:
// today's derper proxies them only for Tailscale's own control plane
// (-ace), which openderp leaves out. See docs/compat.md#derper-connect.
func refuseConnect(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			http.Error(w, "this relay does not proxy CONNECT requests", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}
