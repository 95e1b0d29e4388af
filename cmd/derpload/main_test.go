package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/internal/leakcheck"
	"github.com/openderp/openderp/key"
)

func TestMain(m *testing.M) {
	leakcheck.Main(m, "github.com/openderp/openderp/")
}

// startServer serves our DERP server on a loopback listener and returns
// its /derp URL and the pin of its certificate (TLS only).
func startServer(t *testing.T, useTLS bool) (url, pin string) {
	t.Helper()
	s := derp.NewServer(key.NewNode(), t.Logf)
	mux := http.NewServeMux()
	mux.Handle("/derp", derphttp.Handler(s))
	ts := httptest.NewUnstartedServer(mux)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	if useTLS {
		ts.StartTLS()
		sum := sha256.Sum256(ts.Certificate().Raw)
		pin = "sha256-raw:" + hex.EncodeToString(sum[:])
	} else {
		ts.Start()
	}
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return ts.URL + "/derp", pin
}

func runArgs(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

func TestJSONOutput(t *testing.T) {
	url, _ := startServer(t, false)
	code, out, errOut := runArgs(t, "-json", "-pairs", "2", "-size", "100", "-window", "8", "-duration", "200ms", "-rtt-interval", "1ms", url)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, out)
	}
	for _, k := range []string{"url", "mode", "pairs", "size", "window", "seconds", "sent", "delivered", "drop_fraction", "packets_per_sec", "mb_per_sec", "rtt"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, out)
		}
	}
	if _, ok := m["error"]; ok {
		t.Errorf("JSON of a good run has an error: %s", out)
	}
	rtt, _ := m["rtt"].(map[string]any)
	for _, k := range []string{"samples", "lost", "p50_ms", "p90_ms", "p99_ms", "max_ms"} {
		if _, ok := rtt[k]; !ok {
			t.Errorf("JSON rtt lacks %q: %s", k, out)
		}
	}
	if m["mode"] != "window" || m["pairs"] != 2.0 || m["delivered"].(float64) <= 0 {
		t.Errorf("unexpected result: %s", out)
	}
}

func TestTextOutput(t *testing.T) {
	httpURL, _ := startServer(t, false)
	tlsURL, pin := startServer(t, true)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"windowed", []string{"-pairs", "1", "-duration", "100ms", httpURL}, []string{"1 pairs x 1280 B, window 32 in flight", "delivered", "pkt/s", "MB/s", "rtt", "p99"}},
		{"flat out", []string{"-pairs", "2", "-window", "0", "-size", "100", "-duration", "100ms", httpURL}, []string{"flat", "dropped"}},
		{"rate", []string{"-pairs", "1", "-window", "0", "-rate", "50", "-duration", "100ms", httpURL}, []string{"rate 50 pkt/s per pair"}},
		{"pinned TLS", []string{"-pairs", "1", "-duration", "100ms", "-pin", pin, tlsURL}, []string{"delivered"}},
		{"probe only", []string{"-pairs", "0", "-duration", "100ms", "-rtt-interval", "1ms", httpURL}, []string{"rtt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runArgs(t, tt.args...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "\r") {
				t.Errorf("progress line written to a non-terminal:\n%q", out)
			}
		})
	}
}

func TestBadUsage(t *testing.T) {
	url, _ := startServer(t, false)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no URL", nil, 2, "usage"},
		{"two URLs", []string{url, url}, 2, "usage"},
		{"unknown flag", []string{"-bogus", url}, 2, "bogus"},
		{"too many pairs", []string{"-pairs", "10001", url}, 2, "pairs"},
		{"endless", []string{"-duration", "2h", url}, 2, "duration"},
		{"tiny packets", []string{"-size", "1", url}, 2, "size"},
		{"bad pin", []string{"-pin", "sha256-raw:xyz", url}, 2, "pin"},
		{"bad scheme", []string{"ftp://127.0.0.1/derp"}, 2, "scheme"},
		{"nothing listening", []string{"-duration", "100ms", "http://127.0.0.1:1/derp"}, 1, "connecting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runArgs(t, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d mentioning %q", code, errOut, tt.code, tt.want)
			}
		})
	}
}

func TestJSONReportsFailure(t *testing.T) {
	code, out, _ := runArgs(t, "-json", "-duration", "100ms", "http://127.0.0.1:1/derp")
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if code != 1 || m["error"] == nil {
		t.Fatalf("exit %d, JSON %s; want exit 1 with an error field", code, out)
	}
}

func TestMaxPacketsBound(t *testing.T) {
	url, _ := startServer(t, false)
	code, out, errOut := runArgs(t, "-json", "-pairs", "4", "-max-packets", "40", "-duration", "1m", "-rtt-interval", "-1ns", url)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var m struct {
		Sent    int64
		Seconds float64
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	if m.Sent != 40 || m.Seconds > 30 {
		t.Fatalf("sent %d in %v s; want 40, well under the 1m duration", m.Sent, m.Seconds)
	}
}
