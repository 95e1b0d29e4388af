package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/key"
)

// varzValue returns the value of the unlabelled series name in a
// /debug/varz body, or -1.
func varzValue(body, name string) int64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\d+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseInt(m[1], 10, 64)
	return v
}

// waitLog waits for a log line containing s.
func (d *daemon) waitLog(t *testing.T, s string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l := <-d.logs:
			if strings.Contains(l, s) {
				return
			}
		case <-timeout:
			t.Fatalf("no log line with %q", s)
		}
	}
}

// checkVarzParses requires the whole /debug/varz body to be valid
// exposition text (no family written twice) with the drop counters of
// both eras.
func checkVarzParses(t *testing.T, body string) {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/debug/varz does not parse: %v", err)
	}
	for name, series := range map[string]int{
		"derp_packets_dropped": 14, "derp_bytes_dropped": 14,
		"derp_packets_dropped_reason": 7, "derp_packets_dropped_type": 2,
		"derp_current_notideal_connections": 1, "derp_sclient_write_timeouts": 1,
		"derp_rate_limit_per_client_waited": 1,
	} {
		if f := fams[name]; f == nil || len(f.Metric) != series {
			t.Errorf("family %s: %v; want %d series", name, f, series)
		}
	}
	if f := fams["derp_rate_limit_per_client_bytes_per_second"]; f == nil || f.GetType().String() != "UNTYPED" {
		t.Errorf("rate gauge: %v", f)
	}
}

// TestE2ERateConfig runs derper with -rate-config and -disallow-app-names:
// a fast sender is slowed, not dropped; SIGHUP reloads the file and keeps
// the old limit when the new file is bad; listed app names are refused.
func TestE2ERateConfig(t *testing.T) {
	port := freePort(t, "tcp")
	rc := filepath.Join(t.TempDir(), "rate.json")
	write := func(s string) {
		if err := os.WriteFile(rc, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"PerClientRateLimitBytesPerSec": 1000000}`)
	d := startDerper(t, nil, "-a", fmt.Sprintf("127.0.0.1:%d", port), "-c", filepath.Join(t.TempDir(), "c.json"),
		"-stun=false", "-rate-config", rc, "-disallow-app-names", "blocked, other,")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	hc := &http.Client{Timeout: 10 * time.Second}
	varz := func() string {
		_, body := httpGet(t, hc, base+"/debug/varz")
		return body
	}
	v := varz()
	checkVarzParses(t, v)
	if got := varzValue(v, "derp_rate_limit_per_client_bytes_per_second"); got != 1000000 {
		t.Errorf("rate = %d\n", got)
	}
	if got := varzValue(v, "derp_rate_limit_per_client_burst_bytes"); got != 65568 {
		t.Errorf("burst = %d", got)
	}
	if !strings.Contains(v, "# TYPE derp_rate_limit_per_client_waited counter\nderp_rate_limit_per_client_waited 0\n") {
		t.Errorf("waited counter missing")
	}

	// Five full-size packets: all arrive, some had to wait.
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	connect := func(app string) (*derphttp.Client, key.NodePrivate) {
		k := key.NewNode()
		c, err := derphttp.NewClient(k, base+"/derp", t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.AppName = app
		return c, k
	}
	rx, rxKey := connect("")
	tx, _ := connect("sender")
	if err := rx.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	// Connect returns once the client has sent its key; the server
	// registers it before its first frame, ServerInfo. Packets for rx
	// sent before that would be dropped as for an unknown client.
	if m, err := rx.Recv(); err != nil {
		t.Fatal(err)
	} else if _, ok := m.(derp.ServerInfoMessage); !ok {
		t.Fatalf("first message %T, want ServerInfo", m)
	}
	pkt := bytes.Repeat([]byte{1}, derp.MaxPacketSize)
	const n = 5
	sendErr := make(chan error, 1)
	go func() {
		for range n {
			if err := tx.Send(rxKey.Public(), pkt); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- nil
	}()
	for got := 0; got < n; {
		m, err := rx.Recv()
		if err != nil {
			t.Fatalf("after %d packets: %v", got, err)
		}
		if p, ok := m.(derp.ReceivedPacket); ok && len(p.Data) == len(pkt) {
			got++
		}
	}
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}
	if got := varzValue(varz(), "derp_rate_limit_per_client_waited"); got < 1 {
		t.Errorf("waited = %d; want ≥ 1", got)
	}

	// Reload.
	write(`{"PerClientRateLimitBytesPerSec": 2000000, "PerClientRateBurstBytes": 3000000}`)
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitLog(t, "rate limit 2000000 bytes/s, burst 3000000 bytes")
	if v := varz(); varzValue(v, "derp_rate_limit_per_client_bytes_per_second") != 2000000 || varzValue(v, "derp_rate_limit_per_client_burst_bytes") != 3000000 {
		t.Errorf("after reload:\n%s", v)
	}
	write(`{"PerClientRateLimitBytesPerSec": -5}`)
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitLog(t, "error parsing rate config")
	if got := varzValue(varz(), "derp_rate_limit_per_client_bytes_per_second"); got != 2000000 {
		t.Errorf("a bad reload changed the rate to %d", got)
	}

	// Disallowed app names; the trailing comma blocks nobody else.
	for _, tc := range []struct {
		app string
		ok  bool
	}{{"blocked", false}, {"other", false}, {"", true}, {"fine", true}} {
		c, _ := connect(tc.app)
		err := c.Connect(ctx)
		if err == nil {
			_, err = c.Recv() // ServerInfo, or EOF when refused
		}
		if (err == nil) != tc.ok {
			t.Errorf("app %q: %v; want admitted %v", tc.app, err, tc.ok)
		}
	}
	d.waitLog(t, `rejected: disallowed app name "blocked"`)
	d.stop(t)
}

// Without -rate-config there are no rate metrics and SIGHUP ends derper,
// as it always did.
func TestE2ENoRateConfig(t *testing.T) {
	needDefaultSIGHUP(t)
	port := freePort(t, "tcp")
	d := startDerper(t, nil, "-a", fmt.Sprintf("127.0.0.1:%d", port), "-c", filepath.Join(t.TempDir(), "c.json"), "-stun=false")
	_, v := httpGet(t, &http.Client{Timeout: 10 * time.Second}, fmt.Sprintf("http://127.0.0.1:%d/debug/varz", port))
	if strings.Contains(v, "rate_limit") {
		t.Errorf("rate metrics published without -rate-config")
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	select {
	case <-d.done:
		if d.waitErr == nil {
			t.Error("derper exited cleanly on SIGHUP; want killed by the signal")
		}
	case <-time.After(10 * time.Second):
		t.Error("derper survived SIGHUP")
	}
}
