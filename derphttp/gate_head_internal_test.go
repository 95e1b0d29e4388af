package derphttp

import "testing"

func TestHeadComplete(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"", false},
		{"GET / HTTP/1.1\r\n", false},
		{"GET / HTTP/1.1\r\nHost: a\r\n", false},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r", false},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true},
		{"GET / HTTP/1.1\r\n\r\n", true},
		{"GET / HTTP/1.1\nHost: a\n\n", true},           // bare LF, as net/http accepts
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody", true}, // a body may follow
		{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", true},
	} {
		if got := headComplete([]byte(tc.in)); got != tc.want {
			t.Errorf("headComplete(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestPlausibleHead(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"", true},
		{"GET /derp HT", true},
		{"GET /derp HTTP/1.1\r\nHost: a\r\n", true},
		{"GET /derp HTTP/1.1\nUser-Agent: x\ty\n", true},
		{"\x16\x03\x01\x02\x00", false}, // a TLS ClientHello on the plain port
		{"\x02\x00\x00\x00\x20", false}, // a DERP frame without the upgrade
		{"GET / \x7f", false},
		{"hello there\r\n", false}, // a first line with no HTTP version
		{"SSH-2.0-OpenSSH_9.6\r\n", false},
	} {
		if got := plausibleHead([]byte(tc.in)); got != tc.want {
			t.Errorf("plausibleHead(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
