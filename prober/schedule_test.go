package prober_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/openderp/openderp/prober"
)

func TestContinuousProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := prober.New().WithSpread(true).WithMetricNamespace("derpprobe")
		defer p.Close()
		var runs atomic.Int32
		release := make(chan struct{})
		p.Run("cont", -10*time.Second, nil, prober.ProbeClass{Class: "c", Probe: func(ctx context.Context) error {
			if _, ok := ctx.Deadline(); ok {
				t.Errorf("continuous probe run has a deadline")
			}
			runs.Add(1)
			select {
			case <-release:
				return errors.New("stream broke")
			case <-ctx.Done():
				return ctx.Err()
			}
		}})
		synctest.Wait()
		// Running at once (no spread), with in_flight 1, no end_secs yet.
		if n := runs.Load(); n != 1 {
			t.Fatalf("runs = %d; want 1", n)
		}
		if st := p.ProbeInfo()["cont"].Status; st != prober.StatusRunning {
			t.Errorf("status %q; want running", st)
		}
		if v := testutil.ToFloat64(metricOf(t, p, "derpprobe_in_flight")); v != 1 {
			t.Errorf("in_flight = %v; want 1", v)
		}
		if n := testutil.CollectAndCount(p, "derpprobe_end_secs"); n != 0 {
			t.Errorf("end_secs exported before the first run ended")
		}
		if v := testutil.ToFloat64(metricOf(t, p, "derpprobe_interval_secs")); v != -10 {
			t.Errorf("interval_secs = %v; want -10", v)
		}
		// Not runnable by hand.
		rec := httptest.NewRecorder()
		p.RunHandler(rec, httptest.NewRequest("GET", prober.RunPath+"?name=cont", nil))
		if rec.Code != 404 {
			t.Errorf("manual run of a continuous probe: %d; want 404", rec.Code)
		}
		// A failure is recorded, then the probe pauses 10s and runs once more.
		release <- struct{}{}
		synctest.Wait()
		info := p.ProbeInfo()["cont"]
		if info.Status != prober.StatusFailed || info.Error != "stream broke" || runs.Load() != 1 {
			t.Errorf("after failure: %+v, %d runs", info, runs.Load())
		}
		time.Sleep(9 * time.Second)
		synctest.Wait()
		if runs.Load() != 1 {
			t.Errorf("ran again before the pause ended")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if runs.Load() != 2 {
			t.Errorf("runs after the pause = %d; want 2", runs.Load())
		}
		// Status page: "Continuous", "n/a", no Run button.
		rec = httptest.NewRecorder()
		p.StatusHandler("T").ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		body := rec.Body.String()
		if !strings.Contains(body, "Continuous") || !strings.Contains(body, "n/a") || strings.Contains(body, "Run Probe") {
			t.Errorf("status page for a continuous probe:\n%s", body)
		}
	})
}

// metricOf returns the single series of name that p exports.
func metricOf(t *testing.T, p *prober.Prober, name string) *filtered {
	return &filtered{p: p, name: name}
}

func TestSlowRunsDoNotOverlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := prober.New()
		defer p.Close()
		var running, maxRunning, runs atomic.Int32
		block := make(chan struct{})
		p.Run("slow", 10*time.Second, nil, prober.ProbeClass{Class: "c", Probe: func(ctx context.Context) error {
			n := running.Add(1)
			defer running.Add(-1)
			if n > maxRunning.Load() {
				maxRunning.Store(n)
			}
			runs.Add(1)
			<-block // ignores ctx: holds the slot until released
			return nil
		}})
		synctest.Wait()
		// Ticks at 10s and 20s find the slot taken and give up after an
		// interval each, recording nothing.
		time.Sleep(25 * time.Second)
		synctest.Wait()
		if maxRunning.Load() != 1 || runs.Load() != 1 {
			t.Errorf("max concurrent %d, runs %d; want 1, 1", maxRunning.Load(), runs.Load())
		}
		if info := p.ProbeInfo()["slow"]; info.Status != prober.StatusRunning || len(info.RecentResults) != 0 {
			t.Errorf("info %+v; want running, nothing recorded", info)
		}
		// A manual run waits for the slot one interval, then reports 424.
		rec := httptest.NewRecorder()
		p.RunHandler(rec, httptest.NewRequest("GET", prober.RunPath+"?name=slow", nil))
		if rec.Code != 424 || !strings.Contains(rec.Body.String(), "probe slow: context cancelled") {
			t.Errorf("manual run while busy: %d %q", rec.Code, rec.Body)
		}
		close(block)
		synctest.Wait()
		if info := p.ProbeInfo()["slow"]; info.Status != prober.StatusSucceeded || info.RecentLatencies[0] != 35*time.Second {
			t.Errorf("after release: %+v", info)
		}
	})
}

func TestRunAllHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := twoProbes(t)
		p.Run("cont", -time.Second, nil, prober.ProbeClass{Class: "c", Probe: func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		}})
		for _, tt := range []struct {
			query string
			code  int
			names []string
		}{
			{"", 424, []string{"bad", "good"}},
			{"?exclude=bad", 200, []string{"good"}},
			{"?exclude=bad&exclude=good", 200, nil},
		} {
			rec := httptest.NewRecorder()
			p.RunAllHandler(rec, httptest.NewRequest("GET", prober.RunAllPath+tt.query, nil))
			var res prober.RunAllResult
			if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
				t.Fatal(err)
			}
			var names []string
			for n, r := range res.Results {
				names = append(names, n)
				if r.ProbeInfo.Name != n {
					t.Errorf("result %s holds %s", n, r.ProbeInfo.Name)
				}
			}
			if rec.Code != tt.code || rec.Header().Get("Content-Type") != "application/json" || strings.Join(sorted(names), ",") != strings.Join(tt.names, ",") {
				t.Errorf("probe-all%s = %d %v; want %d %v", tt.query, rec.Code, names, tt.code, tt.names)
			}
		}
		// ProbeInfo keys in the reference's order.
		rec := httptest.NewRecorder()
		p.RunAllHandler(rec, httptest.NewRequest("GET", prober.RunAllPath+"?exclude=bad", nil))
		body := rec.Body.String()
		last := -1
		for _, k := range []string{"Name", "Class", "Interval", "Labels", "Start", "End", "Latency", "Status", "Error", "RecentResults", "RecentLatencies", "PreviousSuccessRatio", "PreviousMedianLatency"} {
			i := strings.Index(body, `"`+k+`":`)
			if i <= last {
				t.Errorf("key %s out of order in %s", k, body)
			}
			last = i
		}
	})
}
