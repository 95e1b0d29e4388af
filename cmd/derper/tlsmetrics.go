package main

import (
	"crypto/tls"
	"expvar"
	"net/http"

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
// gauge while h runs; a DERP connection runs inside h until it closes.
func (m *tlsMetrics) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		label := "unknown"
		if r.TLS != nil {
			label = tlsVersionLabel(r.TLS.Version)
		}
		m.requests.Add(label, 1)
		m.active.Add(label, 1)
		defer m.active.Add(label, -1)
		h.ServeHTTP(w, r)
	})
}

// vars returns the metrics under their reference expvar names.
func (m *tlsMetrics) vars() map[string]expvar.Var {
	return map[string]expvar.Var{
		"derper_tls_request_version":      &m.requests,
		"gauge_derper_tls_active_version": &m.active,
	}
}
