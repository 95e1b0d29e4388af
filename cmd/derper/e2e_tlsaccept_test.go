package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestE2EStalledTLS runs derper over TLS and opens connections that finish
// the TLS handshake and then say nothing, and one that is not TLS at all.
// The listener completes the handshakes (counted in conn_limits), closes
// the stalled connections at -handshake-timeout, and honest clients keep
// relaying throughout.
func TestE2EStalledTLS(t *testing.T) {
	dir := t.TempDir()
	_, pool := tlsFixture(t, dir, "derp.example.test")
	port := freePort(t, "tcp")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	d := startDerper(t, nil, "-a", addr, "-c", filepath.Join(t.TempDir(), "c.json"),
		"-certmode", "manual", "-certdir", dir, "-hostname", "derp.example.test", "-http-port", "-1", "-stun=false",
		"-handshake-timeout", "2s")
	tcfg := &tls.Config{ServerName: "derp.example.test", RootCAs: pool}

	const stalled = 20
	var conns []*tls.Conn
	for range stalled {
		c, err := tls.Dial("tcp", addr, tcfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	notTLS, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer notTLS.Close()
	notTLS.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))

	url := fmt.Sprintf("https://derp.example.test:%d/derp", port)
	relay(t, url, url, &tls.Config{RootCAs: pool}, addr)

	// Each stalled connection is closed by the server within the
	// handshake timeout (plus slack for a loaded machine).
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || strings.Contains(err.Error(), "timeout") {
			t.Fatalf("stalled connection %d: Read = %v, want closed by the server", i, err)
		}
	}

	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tcfg}}
	_, varz := httpGet(t, hc, "https://"+addr+"/debug/varz")
	for _, want := range []string{
		"conn_limits_tls_handshake_errors 1\n",
		fmt.Sprintf("conn_limits_handshake_timeouts %d\n", stalled),
		"derper_tls_request_version{version=\"1.3\"}",
	} {
		if !strings.Contains(varz, want) {
			t.Errorf("varz lacks %q", want)
		}
	}
	// At least the stalled ones, the relay's two clients and this request.
	var done int
	if i := strings.Index(varz, "\nconn_limits_tls_handshakes "); i < 0 {
		t.Error("varz lacks conn_limits_tls_handshakes")
	} else if fmt.Sscan(varz[i+len("\nconn_limits_tls_handshakes "):], &done); done < stalled+3 {
		t.Errorf("conn_limits_tls_handshakes = %d, want >= %d", done, stalled+3)
	}
	d.stop(t)
}
