package prober_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/openderp/openderp/prober"
)

// twoProbes registers a probe that succeeds after 5ms and one that fails,
// runs each once and returns the Prober.
func twoProbes(t *testing.T) *prober.Prober {
	p := prober.New().WithOnce(true).WithMetricNamespace("derpprobe")
	t.Cleanup(func() { p.Close() })
	p.Run("good", 15*time.Second, prober.Labels{"region": "nyc"}, prober.ProbeClass{
		Class:  "derp_mesh",
		Labels: prober.Labels{"derp_path": "single"},
		Probe: func(context.Context) error {
			time.Sleep(5 * time.Millisecond)
			return nil
		},
	})
	p.Run("bad", 30*time.Second, nil, prober.ProbeClass{
		Class: "tls",
		Probe: func(context.Context) error { return errors.New("cert <expired>") },
	})
	p.Wait()
	return p
}

func TestMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := twoProbes(t)
		p.Run("never", time.Hour, nil, prober.ProbeClass{Class: "x", Probe: func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		}})
		synctest.Wait()
		reg := prometheus.NewRegistry()
		reg.MustRegister(p)
		now := float64(time.Now().Unix()) // the bubble's clock starts at 2000-01-01 00:00:00 UTC
		want := strings.NewReplacer("NOW5", formatFloat(now+0.005), "NOW", formatFloat(now)).Replace(`
# HELP derpprobe_attempts_total Probe runs by outcome.
# TYPE derpprobe_attempts_total counter
derpprobe_attempts_total{class="derp_mesh",derp_path="single",name="good",region="nyc",status="fail"} 0
derpprobe_attempts_total{class="derp_mesh",derp_path="single",name="good",region="nyc",status="ok"} 1
derpprobe_attempts_total{class="tls",name="bad",status="fail"} 1
derpprobe_attempts_total{class="tls",name="bad",status="ok"} 0
# HELP derpprobe_end_secs Unix time the latest probe run ended.
# TYPE derpprobe_end_secs gauge
derpprobe_end_secs{class="derp_mesh",derp_path="single",name="good",region="nyc"} NOW5
derpprobe_end_secs{class="tls",name="bad"} NOW
# HELP derpprobe_in_flight Number of runs of the probe in progress.
# TYPE derpprobe_in_flight gauge
derpprobe_in_flight{class="derp_mesh",derp_path="single",name="good",region="nyc"} 0
derpprobe_in_flight{class="tls",name="bad"} 0
derpprobe_in_flight{class="x",name="never"} 1
# HELP derpprobe_interval_secs Probe interval in seconds; negative for a continuous probe.
# TYPE derpprobe_interval_secs gauge
derpprobe_interval_secs{class="derp_mesh",derp_path="single",name="good",region="nyc"} 15
derpprobe_interval_secs{class="tls",name="bad"} 30
derpprobe_interval_secs{class="x",name="never"} 3600
# HELP derpprobe_latency_millis Latency of the latest successful probe run in milliseconds.
# TYPE derpprobe_latency_millis gauge
derpprobe_latency_millis{class="derp_mesh",derp_path="single",name="good",region="nyc"} 5
# HELP derpprobe_result Whether the latest probe run succeeded (1) or failed (0).
# TYPE derpprobe_result gauge
derpprobe_result{class="derp_mesh",derp_path="single",name="good",region="nyc"} 1
derpprobe_result{class="tls",name="bad"} 0
# HELP derpprobe_seconds_total Total time spent in probe runs by outcome, in seconds.
# TYPE derpprobe_seconds_total counter
derpprobe_seconds_total{class="derp_mesh",derp_path="single",name="good",region="nyc",status="fail"} 0
derpprobe_seconds_total{class="derp_mesh",derp_path="single",name="good",region="nyc",status="ok"} 0.005
derpprobe_seconds_total{class="tls",name="bad",status="fail"} 0
derpprobe_seconds_total{class="tls",name="bad",status="ok"} 0
# HELP derpprobe_start_secs Unix time the latest probe run started.
# TYPE derpprobe_start_secs gauge
derpprobe_start_secs{class="derp_mesh",derp_path="single",name="good",region="nyc"} NOW
derpprobe_start_secs{class="tls",name="bad"} NOW
derpprobe_start_secs{class="x",name="never"} NOW5
`)
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
			t.Error(err)
		}
		// Closing a probe removes its metrics.
		p.Probe("bad").Close()
		if n := testutil.CollectAndCount(p, "derpprobe_result"); n != 1 {
			t.Errorf("derpprobe_result series after closing bad = %d; want 1", n)
		}
	})
}

func formatFloat(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}

func TestStatusHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := twoProbes(t)
		p.SetNow(func() time.Time { return time.Now().Add(90 * time.Second) })
		h := p.StatusHandler("DERP Prober")

		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		body := rec.Body.String()
		for _, want := range []string{
			"<title>DERP Prober</title>",
			"1 out of 2 probes failed",
			`<tr class="probe failed" data-name="bad">`,
			`<tr class="probe succeeded" data-name="good">`,
			`<svg class="spark"`,
			`<rect class="fail"`,
			`<circle class="latency"`, // one latency: a dot
			`href="/debug/varz">Prober metrics</a>`,
			`href="/debug/probe-run?name=good">Run Probe</a>`,
			`href="/debug/probe-run?name=bad">Run Probe</a>`,
			"cert &lt;expired&gt;", // escaped
			"1m30s ago",
			"derp_path=single",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("status page lacks %q", want)
			}
		}
		if strings.Index(body, "name=bad") > strings.Index(body, "name=good") {
			t.Errorf("rows not in name order")
		}
		if strings.Contains(body, "://") {
			t.Errorf("status page loads something from another host")
		}

		for _, req := range []*http.Request{
			httptest.NewRequest("GET", "/?format=json", nil),
			func() *http.Request {
				r := httptest.NewRequest("GET", "/", nil)
				r.Header.Set("Accept", "application/json")
				return r
			}(),
		} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var st prober.Status
			if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
				t.Fatalf("decoding JSON status: %v", err)
			}
			if st.Total != 2 || st.Unhealthy != 1 || len(st.Probes) != 2 || st.Probes[0].Name != "bad" ||
				st.Probes[1].Latency != 5*time.Millisecond || st.Probes[1].RecentSuccessRatio != 1 {
				t.Errorf("JSON status = %+v", st)
			}
		}
	})
}

func TestStatusAllHealthy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := twoProbes(t)
		p.Probe("bad").Close()
		rec := httptest.NewRecorder()
		p.StatusHandler("T").ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if !strings.Contains(rec.Body.String(), "All 1 probes are healthy") {
			t.Errorf("summary missing:\n%s", rec.Body)
		}
	})
}

func TestRunHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := twoProbes(t)
		tests := []struct {
			query, accept string
			code          int
			body          string
		}{
			{"", "", 400, "say which probe to run: ?name=<probe name>\n"},
			{"?name=nope", "", 404, "no probe named \"nope\" can be run on demand\n"},
			{"?name=good", "", 200, "ok in 5ms\nrecent runs, this one included: 2, of which 100% ok; median latency 5ms\n"},
			{"?name=bad", "", 424, "failed: cert <expired>\nrecent runs, this one included: 2, of which 0% ok; median latency 0s\n"},
			{"?name=good", "text/html", 200, "ok in 5ms\nrecent runs, this one included: 3, of which 100% ok; median latency 5ms\n"},
		}
		for _, tt := range tests {
			req := httptest.NewRequest("GET", prober.RunPath+tt.query, nil)
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			rec := httptest.NewRecorder()
			p.RunHandler(rec, req)
			if rec.Code != tt.code || rec.Body.String() != tt.body {
				t.Errorf("GET %s = %d %q; want %d %q", tt.query, rec.Code, rec.Body, tt.code, tt.body)
			}
		}

		for _, tt := range []struct {
			name  string
			code  int
			ratio float64
			runs  int
		}{{"bad", 424, 0, 3}, {"good", 200, 1, 4}} {
			req := httptest.NewRequest("GET", prober.RunPath+"?name="+tt.name, nil)
			req.Header.Set("Accept", "application/json")
			rec := httptest.NewRecorder()
			p.RunHandler(rec, req)
			var res prober.RunResult
			if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
				t.Fatalf("decoding: %v", err)
			}
			if rec.Code != tt.code || res.ProbeInfo.Name != tt.name || res.PreviousSuccessRatio != tt.ratio ||
				len(res.ProbeInfo.RecentResults) != tt.runs {
				t.Errorf("JSON run of %s = %d %+v", tt.name, rec.Code, res)
			}
			// The JSON carries the reference's field names.
			var raw map[string]map[string]any
			json.Unmarshal(rec.Body.Bytes(), &raw)
			for _, f := range []string{"Name", "Class", "Interval", "Labels", "Start", "End", "Latency", "Status", "Error", "RecentResults", "RecentLatencies"} {
				if _, ok := raw["ProbeInfo"][f]; !ok {
					t.Errorf("ProbeInfo JSON lacks %s", f)
				}
			}
		}
	})
}

func TestSparkline(t *testing.T) {
	ms := time.Millisecond
	for _, tt := range []struct {
		results   []bool
		latencies []time.Duration
		want      []string
		wantNot   []string
	}{
		{nil, nil, nil, []string{"<svg"}},
		{[]bool{false}, nil, []string{`<rect class="fail"`, "0 of 1 recent runs"}, []string{"latency"}},
		{[]bool{true}, []time.Duration{ms}, []string{`<circle class="latency"`, `<rect class="ok"`}, []string{"polyline"}},
		{[]bool{true, false, true}, []time.Duration{ms, 3 * ms}, []string{`<polyline class="latency"`, `points="1.0,13.0 99.0,1.0"`, "2 of 3 recent runs"}, nil},
	} {
		got := string(prober.Sparkline(tt.results, tt.latencies))
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("sparkline(%v, %v) = %s; lacks %s", tt.results, tt.latencies, got, w)
			}
		}
		for _, w := range tt.wantNot {
			if strings.Contains(got, w) {
				t.Errorf("sparkline(%v, %v) = %s; has %s", tt.results, tt.latencies, got, w)
			}
		}
	}
}
