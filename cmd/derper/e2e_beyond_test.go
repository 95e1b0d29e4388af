package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestE2EMetricsAddr runs the real binary with -metrics-addr next to a
// manual TLS listener and scrapes the separate listener.
func TestE2EMetricsAddr(t *testing.T) {
	dir := t.TempDir()
	_, pool := tlsFixture(t, dir, "derp.example.test")
	port, mport, sport := freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "udp")
	d := startDerper(t, nil, "-a", fmt.Sprintf("127.0.0.1:%d", port), "-c", filepath.Join(t.TempDir(), "c.json"),
		"-certmode", "manual", "-certdir", dir, "-hostname", "derp.example.test", "-http-port", "-1",
		"-stun-port", fmt.Sprint(sport), "-metrics-addr", fmt.Sprintf("127.0.0.1:%d", mport))

	// One TLS request, so the TLS and listener counters have moved.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{ServerName: "derp.example.test", RootCAs: pool}}}
	main := fmt.Sprintf("https://127.0.0.1:%d", port)
	// The main listener keeps the reference's answer for /healthz: the
	// home page, as for every unknown path.
	if resp, body := httpGet(t, hc, main+"/healthz"); resp.StatusCode != 200 || body == "ok\n" {
		t.Errorf("main /healthz: %d %q, want the home page", resp.StatusCode, body)
	}

	c := &http.Client{Timeout: 10 * time.Second}
	base := fmt.Sprintf("http://127.0.0.1:%d", mport)
	if resp, body := httpGet(t, c, base+"/healthz"); resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", resp.StatusCode, body)
	}
	for _, p := range []string{"/debug/", "/debug/varz", "/debug/pprof/", "/derp", "/"} {
		if resp, _ := httpGet(t, c, base+p); resp.StatusCode != 404 {
			t.Errorf("%s on the metrics listener: %d, want 404", p, resp.StatusCode)
		}
	}
	resp, body := httpGet(t, c, base+"/metrics")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	tp := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := tp.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	for _, name := range []string{
		"go_goroutines", "process_cpu_seconds_total", // collectors
		"derp_current_connections", "derp_packets_dropped", // derp
		"stun_requests",                                           // STUN
		"derper_tls_request_version",                              // TLS
		"tls_listener_accepted_connections", "counter_uptime_sec", // listener, process vars
	} {
		if mfs[name] == nil && mfs[strings.TrimPrefix(name, "counter_")] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if mf := mfs["tls_listener_accepted_connections"]; mf != nil && mf.Metric[0].GetCounter().GetValue() < 1 {
		t.Errorf("tls_listener_accepted_connections = %v after a TLS request", mf.Metric[0].GetCounter().GetValue())
	}
	d.stop(t)
}

// TestE2ETLSMinVersion holds the real binary's TLS listener to
// -tls-min-version.
func TestE2ETLSMinVersion(t *testing.T) {
	dir := t.TempDir()
	_, pool := tlsFixture(t, dir, "derp.example.test")
	tests := []struct {
		flag       []string
		tls12Works bool
	}{
		{nil, true},
		{[]string{"-tls-min-version", "1.2"}, true},
		{[]string{"-tls-min-version", "1.3"}, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.flag), func(t *testing.T) {
			port := freePort(t, "tcp")
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			args := append([]string{"-a", addr, "-c", filepath.Join(t.TempDir(), "c.json"), "-certmode", "manual",
				"-certdir", dir, "-hostname", "derp.example.test", "-http-port", "-1", "-stun=false"}, tt.flag...)
			d := startDerper(t, nil, args...)
			dial := func(max uint16) error {
				conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "derp.example.test", RootCAs: pool, MaxVersion: max})
				if err == nil {
					conn.Close()
				}
				return err
			}
			if err := dial(tls.VersionTLS13); err != nil {
				t.Errorf("TLS 1.3 client refused: %v", err)
			}
			err := dial(tls.VersionTLS12)
			if tt.tls12Works && err != nil {
				t.Errorf("TLS 1.2 client refused: %v", err)
			}
			if !tt.tls12Works {
				// The server answers with the protocol_version alert.
				if err == nil || !strings.Contains(err.Error(), "protocol version not supported") {
					t.Errorf("TLS 1.2-only client: %v, want the protocol_version alert", err)
				}
			}
			d.stop(t)
		})
	}

	// Anything else stops derper at startup with a clear message.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-a", "127.0.0.1:0", "-c", filepath.Join(t.TempDir(), "c.json"), "-stun=false", "-tls-min-version", "1.1")
	cmd.Env = append(os.Environ(), runAsDerperEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), `-tls-min-version "1.1": want "1.2" or "1.3"`) {
		t.Errorf("-tls-min-version 1.1: err %v, output %q", err, out)
	}
}
