package main

import (
	"crypto/tls"
	"testing"
)

func TestParseTLSMinVersion(t *testing.T) {
	tests := []struct {
		in   string
		want uint16
		ok   bool
	}{
		{"1.2", tls.VersionTLS12, true},
		{"1.3", tls.VersionTLS13, true},
		{"", 0, false},
		{"1.1", 0, false},
		{"1.0", 0, false},
		{"tls1.3", 0, false},
		{" 1.3", 0, false},
		{"1.4", 0, false},
	}
	for _, tt := range tests {
		got, err := parseTLSMinVersion(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseTLSMinVersion(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// FuzzParseTLSMinVersion: only the two documented values parse, and a
// parsed value is never below TLS 1.2.
func FuzzParseTLSMinVersion(f *testing.F) {
	for _, s := range []string{"1.2", "1.3", "1.1", "", "1.2\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseTLSMinVersion(s)
		if err != nil {
			if v != 0 {
				t.Fatalf("error with value %v", v)
			}
			return
		}
		if s != "1.2" && s != "1.3" {
			t.Fatalf("%q accepted", s)
		}
		if v < tls.VersionTLS12 {
			t.Fatalf("%q gave version %#x", s, v)
		}
	})
}
