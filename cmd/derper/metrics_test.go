package main

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestMetricsHandler checks the routes of the metrics listener and that
// /healthz follows SetHealthy.
func TestMetricsHandler(t *testing.T) {
	h := new(health)
	mh := metricsHandler(h, nil)
	get := func(method, path string) (int, string, string) {
		rec := httptest.NewRecorder()
		mh.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		b, _ := io.ReadAll(rec.Body)
		return rec.Code, rec.Header().Get("Content-Type"), string(b)
	}
	tests := []struct {
		name, method, path string
		healthy            bool
		code               int
		body               string // exact body; "" means not checked
	}{
		{"healthz", "GET", "/healthz", true, 200, "ok\n"},
		{"healthz head", "HEAD", "/healthz", true, 200, ""},
		{"healthz post", "POST", "/healthz", true, 405, ""},
		{"unhealthy", "GET", "/healthz", false, 503, "unhealthy\n"},
		{"metrics while unhealthy", "GET", "/metrics", false, 200, ""},
		{"debug", "GET", "/debug/", true, 404, ""},
		{"varz", "GET", "/debug/varz", true, 404, ""},
		{"pprof", "GET", "/debug/pprof/", true, 404, ""},
		{"root", "GET", "/", true, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.SetHealthy(tt.healthy)
			code, _, body := get(tt.method, tt.path)
			if code != tt.code || tt.body != "" && body != tt.body {
				t.Errorf("%s %s: %d %q, want %d %q", tt.method, tt.path, code, body, tt.code, tt.body)
			}
		})
	}
	h.SetHealthy(true)
	code, ctype, body := get("GET", "/metrics")
	if code != 200 || !strings.HasPrefix(ctype, "text/plain") {
		t.Fatalf("/metrics: %d %q", code, ctype)
	}
	tp := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := tp.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	for _, name := range []string{"go_goroutines", "go_info"} {
		if mfs[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}
