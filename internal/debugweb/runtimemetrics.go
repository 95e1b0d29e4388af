package debugweb

import (
	"encoding/json"
	"fmt"
	"html"
	"math"
	"net/http"
	"runtime/metrics"
	"slices"
	"strings"
)

// runtimeMetricsPath is the Go runtime/metrics browser (today's derper
// has it since v1.104).
const runtimeMetricsPath = "/debug/runtime-metrics"

// serveRuntimeMetrics serves:
//
//   - runtimeMetricsPath: an index of metric names, as HTML or text
//     (format=html|text, else by Accept);
//   - runtimeMetricsPath?name=N (repeatable; a trailing '*' matches a
//     prefix): a JSON object of the values;
//   - runtimeMetricsPath/<name>: the one value, as bare JSON.
//
// Unknown names get 404.
func serveRuntimeMetrics(w http.ResponseWriter, r *http.Request) {
	descs := metrics.All()
	known := make(map[string]bool, len(descs))
	for _, d := range descs {
		known[d.Name] = true
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, runtimeMetricsPath+"/"); ok && rest != "" {
		name := "/" + strings.TrimPrefix(rest, "/")
		if !known[name] {
			http.Error(w, "unknown metric", http.StatusNotFound)
			return
		}
		writeJSON(w, sampleValues([]string{name})[name])
		return
	}
	if patterns := r.URL.Query()["name"]; len(patterns) > 0 {
		var names []string
		for _, p := range patterns {
			if prefix, ok := strings.CutSuffix(p, "*"); ok {
				for _, d := range descs {
					if strings.HasPrefix(d.Name, prefix) {
						names = append(names, d.Name)
					}
				}
				continue
			}
			if !known[p] {
				http.Error(w, "unknown metric "+p, http.StatusNotFound)
				return
			}
			names = append(names, p)
		}
		slices.Sort(names)
		writeJSON(w, sampleValues(slices.Compact(names)))
		return
	}
	asHTML := strings.Contains(r.Header.Get("Accept"), "text/html")
	switch r.URL.Query().Get("format") {
	case "html":
		asHTML = true
	case "text":
		asHTML = false
	}
	if !asHTML {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		for _, d := range descs {
			fmt.Fprintln(w, d.Name)
		}
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, "<html><head><title>runtime metrics</title></head><body>\n<h1>Go runtime metrics</h1>\n<ul>\n")
	for _, d := range descs {
		fmt.Fprintf(w, "<li><a href=\"%s\">%s</a>: %s</li>\n", html.EscapeString(runtimeMetricsPath+d.Name), html.EscapeString(d.Name), html.EscapeString(d.Description))
	}
	fmt.Fprint(w, "</ul>\n</body></html>\n")
}

// sampleValues reads the named metrics and converts them to JSON-ready
// values: numbers, or for histograms {"buckets": [...], "counts": [...]}
// with infinite bucket bounds as the strings "-Inf" and "+Inf".
func sampleValues(names []string) map[string]any {
	samples := make([]metrics.Sample, len(names))
	for i, n := range names {
		samples[i].Name = n
	}
	metrics.Read(samples)
	out := make(map[string]any, len(samples))
	for _, s := range samples {
		switch s.Value.Kind() {
		case metrics.KindUint64:
			out[s.Name] = s.Value.Uint64()
		case metrics.KindFloat64:
			out[s.Name] = jsonFloat(s.Value.Float64())
		case metrics.KindFloat64Histogram:
			h := s.Value.Float64Histogram()
			buckets := make([]any, len(h.Buckets))
			for i, b := range h.Buckets {
				buckets[i] = jsonFloat(b)
			}
			out[s.Name] = map[string]any{"buckets": buckets, "counts": h.Counts}
		default:
			out[s.Name] = nil
		}
	}
	return out
}

// jsonFloat returns f, or a string for the values JSON cannot hold.
func jsonFloat(f float64) any {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	}
	return f
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}
