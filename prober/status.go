package prober

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// Paths the status page links to. derpprobe serves RunHandler and the
// metrics there.
const (
	RunPath     = "/debug/probe-run"
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
	Unhealthy int // probes whose latest run failed or that never ran
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
		if !info.Result {
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
			Ratio        float64
			Median       time.Duration
		}
		data := struct {
			Status
			Probes               []row
			RunPath, MetricsPath string
		}{Status: st, RunPath: RunPath, MetricsPath: MetricsPath}
		now := p.now()
		for _, ps := range st.Probes {
			data.Probes = append(data.Probes, row{
				ProbeInfo: ps.ProbeInfo,
				Age:       now.Sub(ps.End).Truncate(time.Second).String(),
				EndText:   ps.End.Format(time.RFC3339),
				Ratio:     ps.RecentSuccessRatio,
				Median:    ps.RecentMedianLatency,
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
// waiting for any scheduled run of it to finish first, and records the
// result like a scheduled run. It answers 400 without a name, 404 for an
// unknown probe, and otherwise 200 on success or 424 (Failed Dependency)
// on failure. With "Accept: application/json" the body is a RunResult,
// else a short text report. Both give the recent statistics from before
// this run.
func (p *Prober) RunHandler(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	if name == "" {
		http.Error(w, "missing name parameter", http.StatusBadRequest)
		return
	}
	pr := p.Probe(name)
	if pr == nil {
		http.Error(w, fmt.Sprintf("unknown probe %q", name), http.StatusNotFound)
		return
	}
	info, prev, err := pr.run()
	code := http.StatusOK
	if err != nil {
		code = http.StatusFailedDependency
	}
	if r.Header.Get("Accept") == "application/json" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(RunResult{
			ProbeInfo:             info,
			PreviousSuccessRatio:  prev.RecentSuccessRatio(),
			PreviousMedianLatency: prev.RecentMedianLatency(),
		})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	if err != nil {
		fmt.Fprintf(w, "Probe failed: %v\n", err)
	} else {
		fmt.Fprintf(w, "Probe succeeded in %v\n", info.Latency)
	}
	fmt.Fprintf(w, "Last %d probes: success rate %d%%, median latency %v\n",
		len(prev.RecentResults), int(prev.RecentSuccessRatio()*100), prev.RecentMedianLatency())
}

// RunResult is RunHandler's JSON answer. The previous figures are computed
// from the history before this run.
type RunResult struct {
	ProbeInfo             ProbeInfo
	PreviousSuccessRatio  float64
	PreviousMedianLatency time.Duration
}
