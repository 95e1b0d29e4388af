package prober

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Paths the status page links to. derpprobe serves RunHandler and the
// metrics there.
const (
	RunPath     = "/debug/probe-run"
	RunAllPath  = "/debug/probe-all"
	MetricsPath = "/debug/varz"
)

//go:embed status.html
var statusHTML string

var statusTmpl = template.Must(template.New("status").Parse(statusHTML))

// Status is the content of the status page; its JSON encoding is the
// page's JSON view.
type Status struct {
	Title     string
	Total     int // registered probes
	Unhealthy int // probes whose latest finished run failed
	Probes    []ProbeStatus
}

// ProbeStatus is one probe's row of the status page.
type ProbeStatus struct {
	ProbeInfo
	RecentSuccessRatio  float64
	RecentMedianLatency time.Duration
}

// Status returns the state of every probe, in name order.
func (p *Prober) Status(title string) Status {
	st := Status{Title: title}
	for _, pr := range p.sorted() {
		info := pr.Info()
		st.Total++
		if info.Error != "" {
			st.Unhealthy++
		}
		st.Probes = append(st.Probes, ProbeStatus{
			ProbeInfo:           info,
			RecentSuccessRatio:  info.RecentSuccessRatio(),
			RecentMedianLatency: info.RecentMedianLatency(),
		})
	}
	return st
}

// StatusHandler returns a handler serving the status page titled title:
// a summary line, a link to the metrics and one table row per probe with
// a button that runs it now. With the query parameter format=json, or a
// request header "Accept: application/json", it serves the same content
// as JSON (Status).
//
// The page is self-contained: unlike the reference it loads no script or
// stylesheet from a CDN. See docs/compat.md#prober-status-page.
func (p *Prober) StatusHandler(title string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := p.Status(title)
		if r.URL.Query().Get("format") == "json" || r.Header.Get("Accept") == "application/json" {
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			enc.Encode(st)
			return
		}
		type row struct {
			ProbeInfo
			Age, EndText string
			StartAge     string
			Ratio        float64
			Median       time.Duration
			Continuous   bool
			Spark        template.HTML
		}
		data := struct {
			Status
			Probes               []row
			RunPath, MetricsPath string
		}{Status: st, RunPath: RunPath, MetricsPath: MetricsPath}
		now := p.now()
		for _, ps := range st.Probes {
			data.Probes = append(data.Probes, row{
				ProbeInfo:  ps.ProbeInfo,
				Age:        now.Sub(ps.End).Truncate(time.Second).String(),
				EndText:    ps.End.Format(time.RFC3339),
				StartAge:   now.Sub(ps.Start).Truncate(time.Second).String(),
				Continuous: ps.Interval < 0,
				Spark:      sparkline(ps.RecentResults, ps.RecentLatencies),
				Ratio:      ps.RecentSuccessRatio,
				Median:     ps.RecentMedianLatency,
			})
		}
		var b strings.Builder
		if err := statusTmpl.Execute(&b, data); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, b.String())
	})
}

// RunHandler runs the probe named by the query parameter "name" now,
// waiting for any scheduled run of it to finish first (at most one
// interval), and records the result like a scheduled run. It answers 400
// without a name, 404 for an unknown or continuous probe, and otherwise
// 200 on success or 424 (Failed Dependency) on failure. With "Accept:
// application/json" the body is a RunResult, else a short text report.
// Both give the recent statistics including this run.
func (p *Prober) RunHandler(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	if name == "" {
		http.Error(w, "say which probe to run: ?name=<probe name>", http.StatusBadRequest)
		return
	}
	pr := p.Probe(name)
	if pr == nil || pr.IsContinuous() {
		http.Error(w, fmt.Sprintf("no probe named %q can be run on demand", name), http.StatusNotFound)
		return
	}
	info, err := pr.run()
	code := http.StatusOK
	if err != nil {
		code = http.StatusFailedDependency
	}
	if r.Header.Get("Accept") == "application/json" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(newRunResult(info))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	if err != nil {
		fmt.Fprintf(w, "failed: %v\n", err)
	} else {
		fmt.Fprintf(w, "ok in %v\n", info.Latency)
	}
	fmt.Fprintf(w, "recent runs, this one included: %d, of which %d%% ok; median latency %v\n",
		len(info.RecentResults), int(info.RecentSuccessRatio()*100), info.RecentMedianLatency())
}

// RunResult is the JSON answer of RunHandler and, per probe, of
// RunAllHandler. The "Previous" figures cover the recent history
// including this run (the names are the reference's).
type RunResult struct {
	ProbeInfo             ProbeInfo
	PreviousSuccessRatio  float64
	PreviousMedianLatency time.Duration
}

func newRunResult(info ProbeInfo) RunResult {
	return RunResult{
		ProbeInfo:             info,
		PreviousSuccessRatio:  info.RecentSuccessRatio(),
		PreviousMedianLatency: info.RecentMedianLatency(),
	}
}

// RunAllResult is RunAllHandler's JSON answer, by probe name.
type RunAllResult struct {
	Results map[string]RunResult
}

// RunAllHandler runs every probe that is not continuous at once, except
// those named by the repeatable query parameter "exclude", and answers
// with a RunAllResult in JSON: status 200 if every run succeeded, else
// 424.
func (p *Prober) RunAllHandler(w http.ResponseWriter, r *http.Request) {
	excluded := r.URL.Query()["exclude"]
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		res = RunAllResult{Results: make(map[string]RunResult)}
		bad bool
	)
	for _, pr := range p.sorted() {
		if pr.IsContinuous() || slices.Contains(excluded, pr.name) {
			continue
		}
		wg.Go(func() {
			info, err := pr.run()
			mu.Lock()
			defer mu.Unlock()
			res.Results[pr.name] = newRunResult(info)
			if err != nil {
				bad = true
			}
		})
	}
	wg.Wait()
	w.Header().Set("Content-Type", "application/json")
	if bad {
		w.WriteHeader(http.StatusFailedDependency)
	}
	json.NewEncoder(w).Encode(res)
}
