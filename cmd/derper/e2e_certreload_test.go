package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/internal/certs"
	"github.com/openderp/openderp/key"
)

// waitLogWithin waits up to d for a log line containing s.
func (d *daemon) waitLogWithin(t *testing.T, s string, within time.Duration) {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case l := <-d.logs:
			if strings.Contains(l, s) {
				return
			}
		case <-timeout:
			t.Fatalf("no log line with %q within %v", s, within)
		}
	}
}

// promValue returns the value of the single-series family name in an
// exposition body, or -1.
func promValue(t *testing.T, body, name string) float64 {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	f := fams[name]
	if f == nil || len(f.Metric) != 1 {
		return -1
	}
	m := f.Metric[0]
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return -1
}

// TestE2ECertReload swaps the manual certificate of the real binary on
// SIGHUP and by rewriting the files, refuses a mismatched pair, reloads
// -rate-config on the same SIGHUP, and keeps DERP clients connected
// throughout.
func TestE2ECertReload(t *testing.T) {
	const host = "derp.example.test"
	dir := t.TempDir()
	derA := writeTestCert(t, dir, host)
	leafA, _ := x509.ParseCertificate(derA)
	pool := x509.NewCertPool()
	pool.AddCert(leafA)
	rc := filepath.Join(t.TempDir(), "rate.json")
	if err := os.WriteFile(rc, []byte(`{"PerClientRateLimitBytesPerSec": 1000000}`), 0o600); err != nil {
		t.Fatal(err)
	}
	port, mport := freePort(t, "tcp"), freePort(t, "tcp")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	d := startDerper(t, nil, "-a", addr, "-c", filepath.Join(t.TempDir(), "c.json"), "-certmode", "manual",
		"-certdir", dir, "-hostname", host, "-http-port", "-1", "-stun=false", "-rate-config", rc,
		"-metrics-addr", fmt.Sprintf("127.0.0.1:%d", mport))

	served := func() []byte {
		t.Helper()
		conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: host, InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Raw
	}
	serial := func(der []byte) string {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("serial %x", c.SerialNumber)
	}
	metrics := func() string {
		_, body := httpGet(t, &http.Client{Timeout: 10 * time.Second}, fmt.Sprintf("http://127.0.0.1:%d/metrics", mport))
		return body
	}

	// Two clients connected on certificate A.
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var dialer net.Dialer
	connect := func() (*derphttp.Client, key.NodePrivate) {
		k := key.NewNode()
		c, err := derphttp.NewClient(k, fmt.Sprintf("https://%s:%d/derp", host, port), t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.TLSConfig = &tls.Config{RootCAs: pool}
		c.SetURLDialer(func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		})
		if err := c.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		return c, k
	}
	rx, _ := connect()
	tx, _ := connect()
	relayOnce := func(msg string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		sendUntilReceived(t, ctx, rx, tx, msg)
	}
	relayOnce("before")
	accepts := promValue(t, metrics(), "derp_accepts")

	// SIGHUP with a new pair: both reloads run, B is served.
	derB := writeTestCert(t, dir, host)
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitLog(t, "per-client rate limit 1000000 bytes/s")
	d.waitLog(t, "certificate reloaded (SIGHUP): now serving "+serial(derB))
	if got := served(); string(got) != string(derB) {
		t.Errorf("after SIGHUP serving %s, want %s", serial(got), serial(derB))
	}

	// A mismatched pair (C's certificate, B's key) is refused; B stays.
	other := t.TempDir()
	writeTestCert(t, other, host)
	crtC, _ := certs.ManualFiles(other, host)
	crt, _ := certs.ManualFiles(dir, host)
	b, err := os.ReadFile(crtC)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(crt, b, 0o600); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitLog(t, "certificate not reloaded (SIGHUP); still serving "+serial(derB))
	if got := served(); string(got) != string(derB) {
		t.Errorf("after a bad pair serving %s, want %s", serial(got), serial(derB))
	}

	// A good pair written without a signal is picked up by the poller
	// (every 5s, once stable for a tick).
	derD := writeTestCert(t, dir, host)
	d.waitLogWithin(t, "certificate reloaded (files changed): now serving "+serial(derD), 30*time.Second)
	if got := served(); string(got) != string(derD) {
		t.Errorf("after rewriting the files serving %s, want %s", serial(got), serial(derD))
	}

	// The clients of certificate A are still on their first connections.
	relayOnce("after")
	m := metrics()
	if got := promValue(t, m, "derp_accepts"); got != accepts || got < 2 {
		t.Errorf("derp_accepts went from %v to %v: clients reconnected", accepts, got)
	}
	leafD, _ := x509.ParseCertificate(derD)
	if got := promValue(t, m, "derper_cert_not_after_unix"); got != float64(leafD.NotAfter.Unix()) {
		t.Errorf("derper_cert_not_after_unix = %v, want %d", got, leafD.NotAfter.Unix())
	}
	if got := promValue(t, m, "derper_cert_reloads"); got < 2 {
		t.Errorf("derper_cert_reloads = %v, want ≥ 2", got)
	}
	if got := promValue(t, m, "derper_cert_reload_failures"); got < 1 {
		t.Errorf("derper_cert_reload_failures = %v, want ≥ 1", got)
	}
	d.stop(t)
}
