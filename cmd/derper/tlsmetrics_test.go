package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestTLSActiveGaugeHijack: a handler that hijacks and returns at once
// (as a DERP handler serving the connection elsewhere does) leaves the
// request in the active gauge until the connection is closed; an
// ordinary request leaves it when the handler returns.
func TestTLSActiveGaugeHijack(t *testing.T) {
	m := newTLSMetrics()
	conns := make(chan net.Conn, 1)
	h := m.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/hijack" {
			return
		}
		nc, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conns <- nc
	}))
	srv := httptest.NewTLSServer(h)
	defer srv.Close()
	get := func(v interface{ String() string }) string {
		if v == nil {
			return "0"
		}
		return v.String()
	}
	active := func() string {
		if v := m.active.Get("1.3"); v != nil {
			return get(v)
		}
		return "0"
	}

	res, err := srv.Client().Get(srv.URL + "/plain")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if a := active(); a != "0" {
		t.Fatalf("after a plain request: %s", a)
	}

	c, err := tls.Dial("tcp", srv.Listener.Addr().String(), srv.Client().Transport.(*http.Transport).TLSClientConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /hijack HTTP/1.1\r\nHost: x\r\n\r\n")
	nc := <-conns
	if a := active(); a != "1" {
		t.Errorf("hijacked connection open: %s, want 1", a)
	}
	nc.Close()
	nc.Close() // a second Close must not count again
	if a := active(); a != "0" {
		t.Errorf("hijacked connection closed: %s, want 0", a)
	}
	if r := get(m.requests.Get("1.3")); r != "2" {
		t.Errorf("requests %s", r)
	}
}
