package main

import (
	"crypto/tls"
	"net/http"
	"slices"
	"testing"
)

// TestServeTLSConfig checks that the TLS listener offers the protocols
// ServeTLS would: h2 only where HTTP/2 is on, http/1.1 always for derper,
// the provider's other protocols (ACME's acme-tls/1) kept.
func TestServeTLSConfig(t *testing.T) {
	for _, tc := range []struct {
		name  string
		next  []string
		h2    bool
		nilPr bool
		want  []string
	}{
		{"manual certificate", nil, false, false, []string{"http/1.1"}},
		{"ACME with h2", []string{"h2", "http/1.1", "acme-tls/1"}, true, false, []string{"h2", "http/1.1", "acme-tls/1"}},
		{"h2 listed but off", []string{"h2", "acme-tls/1"}, false, false, []string{"acme-tls/1", "http/1.1"}},
		{"no Protocols set: HTTP/2 on, as in net/http", nil, false, true, []string{"h2", "http/1.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := slices.Clone(tc.next)
			srv := &http.Server{TLSConfig: &tls.Config{NextProtos: tc.next}}
			if !tc.nilPr {
				srv.Protocols = new(http.Protocols)
				srv.Protocols.SetHTTP1(true)
				srv.Protocols.SetHTTP2(tc.h2)
			}
			got := serveTLSConfig(srv).NextProtos
			if !slices.Equal(got, tc.want) {
				t.Errorf("NextProtos = %q, want %q", got, tc.want)
			}
			if !slices.Equal(srv.TLSConfig.NextProtos, orig) {
				t.Errorf("server's own config changed to %q", srv.TLSConfig.NextProtos)
			}
		})
	}
}
