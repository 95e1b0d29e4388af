package main

import (
	"bytes"
	"context"
	"math"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/openderp/openderp/internal/leakcheck"
)

func TestMain(m *testing.M) {
	if os.Getenv(probeEnv) != "" { // startProbe runs the test binary as the probe
		os.Exit(probeMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	leakcheck.Main(m, "github.com/openderp/openderp/")
}

// TestSmoke runs a tiny version of every case against our own server
// only, so that `make test` keeps the harness working without spending
// minutes on the references.
func TestSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	impls, err := buildAll(ctx, t.TempDir(), filterImpls(allImpls(), []string{"openderp"}), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	p := plan{
		runs: 1, relayDur: 150 * time.Millisecond, rttDur: 100 * time.Millisecond,
		sizes: []int{100}, pairs: []int{2}, idleSteps: []int{20, 50}, stalled: 20,
	}
	if err := raiseFileLimit(uint64(p.idleSteps[len(p.idleSteps)-1]) + 256); err != nil {
		t.Fatal(err)
	}
	res := measureAll(ctx, p, impls, t.Logf)
	derive(res)
	ours := res["openderp"]
	for _, r := range rows(p) {
		v := ours[r.key]
		if len(v) != 1 || math.IsNaN(v[0]) || v[0] < 0 || (v[0] == 0 && !strings.HasSuffix(r.key, ".drop")) {
			t.Errorf("%s (%s) = %v, want one positive figure", r.label, r.key, v)
		}
	}
	var buf bytes.Buffer
	printTable(&buf, p, res)
	table := buf.String()
	if !strings.Contains(table, "| figure | unit | openderp |") || strings.Count(table, "\n|") != len(rows(p))+2 {
		t.Errorf("table malformed:\n%s", table)
	}
}

// TestGOMAXPROCSReachesServer checks that -gomaxprocs sets the server
// processes' GOMAXPROCS (the harness's own stays as it is).
func TestGOMAXPROCSReachesServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	impls, err := buildAll(ctx, t.TempDir(), filterImpls(allImpls(), []string{"openderp"}), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	want := runtime.GOMAXPROCS(0) + 3
	impls[0].maxProcs = want
	s, err := impls[0].start(false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	hc := &http.Client{Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	m, err := s.mem(ctx, hc)
	if err != nil {
		t.Fatal(err)
	}
	if m.GOMAXPROCS != want {
		t.Fatalf("server GOMAXPROCS = %d, want %d", m.GOMAXPROCS, want)
	}
}

func TestSummarize(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		in   []float64
		want stats
	}{
		{nil, stats{}},
		{[]float64{nan}, stats{}},
		{[]float64{3}, stats{3, 3, 3, 1}},
		{[]float64{3, 1, 2}, stats{2, 1, 3, 3}},
		{[]float64{4, nan, 1, 2, 3}, stats{2.5, 1, 4, 4}},
	}
	for _, tt := range tests {
		if got := summarize(tt.in); got != tt.want {
			t.Errorf("summarize(%v) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestRatiosPairRuns(t *testing.T) {
	nan := math.NaN()
	got := ratios([]float64{2, nan, 6, 8}, []float64{1, 5, 0, 4})
	want := []float64{2, 2} // run 2 failed for a, run 3 divides by zero
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("ratios = %v, want %v", got, want)
	}
}

func TestResultsAddKeepsRunIndex(t *testing.T) {
	res := results{}
	res.add(1, 3, "x", metrics{"k": 7})
	v := res["x"]["k"]
	if len(v) != 3 || !math.IsNaN(v[0]) || v[1] != 7 || !math.IsNaN(v[2]) {
		t.Errorf("values = %v, want [NaN 7 NaN]", v)
	}
}
