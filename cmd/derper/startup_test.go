package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// TestWatchACME checks the ACME certificate lines: each new certificate
// once, a failure for -hostname once per interval with the fix, nothing
// for other names or for a CA's TLS-ALPN-01 challenge.
func TestWatchACME(t *testing.T) {
	der := writeTestCert(t, t.TempDir(), "relay.example")
	good := &tls.Certificate{Certificate: [][]byte{der}}
	failing := errors.New("acme: urn:ietf:params:acme:error:connection")
	type hello struct {
		sni    string
		protos []string
		fail   bool
	}
	tests := []struct {
		name         string
		hellos       []hello
		wantObtained int
		wantProblems int
	}{
		{"served twice, logged once", []hello{{sni: "relay.example"}, {sni: "relay.example"}}, 1, 0},
		{"failures for the host name, one line", []hello{{sni: "relay.example", fail: true}, {sni: "RELAY.example", fail: true}}, 0, 1},
		{"failure for another name", []hello{{sni: "other.example", fail: true}}, 0, 0},
		{"TLS-ALPN-01 challenge", []hello{{sni: "relay.example", protos: []string{"acme-tls/1"}}}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			lg := newLogger(&buf, logSettings{logFormatText, slog.LevelInfo})
			var fail bool
			get := watchACME(lg, "relay.example", func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				if fail {
					return nil, failing
				}
				return good, nil
			})
			for _, h := range tt.hellos {
				fail = h.fail
				c, err := get(&tls.ClientHelloInfo{ServerName: h.sni, SupportedProtos: h.protos})
				if (err != nil) != h.fail || (err == nil && c != good) {
					t.Fatalf("get(%q) = %v, %v", h.sni, c, err)
				}
			}
			out := buf.String()
			if n := strings.Count(out, "derper: certificate obtained for relay.example (ACME), valid until "); n != tt.wantObtained {
				t.Errorf("obtained lines %d, want %d:\n%s", n, tt.wantObtained, out)
			}
			if n := strings.Count(out, "ACME could not get a certificate for relay.example: "+failing.Error()+"; fix: make DNS"); n != tt.wantProblems {
				t.Errorf("problem lines %d, want %d:\n%s", n, tt.wantProblems, out)
			}
		})
	}
}
