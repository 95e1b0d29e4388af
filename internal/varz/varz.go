package varz

import (
	"bufio"
	"expvar"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// ContentType is the media type of the text exposition format.
const ContentType = "text/plain;version=0.0.4;charset=utf-8"

// A LabelMap is an expvar map whose keys are the values of one label.
type LabelMap struct {
	expvar.Map
	Label string // label name; "label" if empty
}

// A histogram is anything that can report cumulative bucket counts, such
// as *derp.Histogram.
type histogram interface {
	Snapshot() (bounds []float64, cumulative []uint64, sum float64, count uint64)
}

// nestedLabels names the label of maps nested in sets, keyed by the
// Prometheus name of the map. Plain *expvar.Map values cannot carry a
// label name, so the known ones are listed here; others use "label".
var nestedLabels = map[string]string{
	"derp_packets_dropped_reason": "reason",
	"derp_packets_dropped_type":   "type",
	"derp_packets_received_kind":  "kind",
	"derp_tcp_rtt":                "le",
	"stun_requests":               "disposition",
	"stun_addrfamily":             "family",
}

// typePrefixes are checked in this order.
var typePrefixes = []string{"gauge_", "counter_", "histogram_"}

// splitType strips a leading type prefix from name and returns the type
// ("" if untyped).
func splitType(name string) (typ, rest string) {
	for _, p := range typePrefixes {
		if r, ok := strings.CutPrefix(name, p); ok {
			return strings.TrimSuffix(p, "_"), r
		}
	}
	return "", name
}

// Sanitize turns s into a valid Prometheus metric name: printable ASCII
// other than letters, digits, '_' and ':' becomes '_', anything else is
// dropped, and a leading digit or empty result gets a '_' prefix.
func Sanitize(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == ':':
			b.WriteByte(c)
		case c >= 0x20 && c < 0x7f:
			b.WriteByte('_')
		}
	}
	out := b.String()
	if out == "" || (out[0] >= '0' && out[0] <= '9') {
		out = "_" + out
	}
	return out
}

// A PrometheusWriter is a variable that renders itself, such as
// *derp.DropCounters with its two labels.
type PrometheusWriter interface {
	WritePrometheus(w io.Writer, name string) error
}

// WriteExpvar writes every published expvar variable to w. A child of a
// set whose metric name equals a top-level variable's is left out, so
// that a name is never written twice: derp's unlabelled packets_dropped
// gives way to the labelled top-level derp_packets_dropped, as in the
// reference since v1.80.
func WriteExpvar(w io.Writer) error {
	bw := bufio.NewWriter(w)
	top := map[string]bool{}
	expvar.Do(func(kv expvar.KeyValue) {
		_, name := splitType(kv.Key)
		top[Sanitize(name)] = true
	})
	expvar.Do(func(kv expvar.KeyValue) {
		writeVarSkipping(bw, kv.Key, kv.Value, top)
	})
	return bw.Flush()
}

// WriteVar writes one top-level variable published under name.
func WriteVar(w io.Writer, name string, v expvar.Var) error {
	bw := bufio.NewWriter(w)
	writeVar(bw, name, v)
	return bw.Flush()
}

func writeVar(w *bufio.Writer, key string, v expvar.Var) {
	writeVarSkipping(w, key, v, nil)
}

func writeVarSkipping(w *bufio.Writer, key string, v expvar.Var, skip map[string]bool) {
	typ, name := splitType(key)
	label := ""
	if rest, ok := strings.CutPrefix(name, "labelmap_"); ok {
		if l, n, ok := strings.Cut(rest, "_"); ok {
			label, name = l, n
		}
	}
	name = Sanitize(name)
	switch v := v.(type) {
	case PrometheusWriter:
		v.WritePrometheus(w, name)
	case *LabelMap:
		l := v.Label
		if l == "" {
			l = "label"
		}
		writeLabelMap(w, name, typ, l, &v.Map)
	case *expvar.Map:
		if label != "" {
			writeLabelMap(w, name, typ, label, v)
			return
		}
		writeSet(w, name, v, skip)
	case expvar.Func:
		writeFunc(w, key, name, typ, v.Value(), true)
	default:
		writeValue(w, key, name, typ, v)
	}
}

// writeSet renders the children of a set under prefix, except those
// whose names are in skip.
func writeSet(w *bufio.Writer, prefix string, m *expvar.Map, skip map[string]bool) {
	m.Do(func(kv expvar.KeyValue) {
		typ, child := splitType(kv.Key)
		name := Sanitize(prefix + "_" + child)
		if skip[name] {
			return
		}
		switch v := kv.Value.(type) {
		case *LabelMap:
			writeLabelMap(w, name, typ, v.Label, &v.Map)
		case *expvar.Map:
			l := nestedLabels[name]
			if l == "" {
				l = "label"
			}
			writeLabelMap(w, name, typ, l, v)
		case expvar.Func:
			writeFunc(w, kv.Key, name, typ, v.Value(), false)
		default:
			writeValue(w, kv.Key, name, typ, v)
		}
	})
}

func writeLabelMap(w *bufio.Writer, name, typ, label string, m *expvar.Map) {
	if label == "" {
		label = "label"
	}
	if typ != "" {
		fmt.Fprintf(w, "# TYPE %s %s\n", name, typ)
	}
	m.Do(func(kv expvar.KeyValue) {
		var val string
		switch v := kv.Value.(type) {
		case *expvar.Int:
			val = strconv.FormatInt(v.Value(), 10)
		case *expvar.Float:
			val = formatFloat(v.Value())
		case expvar.Func:
			s, ok := number(v.Value())
			if !ok {
				return
			}
			val = s
		default:
			val = v.String()
		}
		fmt.Fprintf(w, "%s{%s=%q} %s\n", name, label, kv.Key, val)
	})
}

// writeValue renders a non-function, non-map variable.
func writeValue(w *bufio.Writer, key, name, typ string, v expvar.Var) {
	switch v := v.(type) {
	case *expvar.Int:
		if typ == "" {
			typ = "counter"
		}
		fmt.Fprintf(w, "# TYPE %s %s\n%s %d\n", name, typ, name, v.Value())
	case *expvar.Float:
		if typ == "" {
			typ = "gauge"
		}
		fmt.Fprintf(w, "# TYPE %s %s\n%s %s\n", name, typ, name, formatFloat(v.Value()))
	case histogram:
		bounds, cum, sum, count := v.Snapshot()
		fmt.Fprintf(w, "# TYPE %s histogram\n", name)
		for i, b := range bounds {
			fmt.Fprintf(w, "%s_bucket{le=\"%v\"} %d\n", name, b, cum[i])
		}
		fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %s\n%s_count %d\n", name, count, name, formatFloat(sum), name, count)
	default:
		fmt.Fprintf(w, "# not exported: expvar %q (Go type %T) has no Prometheus type\n", key, v)
	}
}

// writeFunc renders the result val of an expvar.Func.
func writeFunc(w *bufio.Writer, key, name, typ string, val any, top bool) {
	if typ != "" {
		s, ok := number(val)
		if !ok {
			fmt.Fprintf(w, "# not exported: expvar func %q returned Go type %T\n", key, val)
			return
		}
		fmt.Fprintf(w, "# TYPE %s %s\n%s %s\n", name, typ, name, s)
		return
	}
	if s, ok := number(val); ok {
		fmt.Fprintf(w, "%s %s\n", name, s)
		return
	}
	switch v := val.(type) {
	case string:
		// Only top-level version strings are exported; a string nested in
		// a set (derp's "version") is skipped, as in the reference.
		if top && strings.HasSuffix(name, "version") {
			fmt.Fprintf(w, "%s{version=%q} 1\n", name, v)
			return
		}
	case runtime.MemStats:
		if name == "memstats" {
			writeMemStats(w, &v)
			return
		}
	case *runtime.MemStats:
		if name == "memstats" {
			writeMemStats(w, v)
			return
		}
	}
	fmt.Fprintf(w, "# not exported: expvar %q (Go type %T) has no Prometheus type\n", key, val)
}

func writeMemStats(w *bufio.Writer, ms *runtime.MemStats) {
	one := func(name, typ, help string, v uint64) {
		fmt.Fprintf(w, "# HELP memstats_%s %s\n# TYPE memstats_%s %s\nmemstats_%s %d\n", name, help, name, typ, name, v)
	}
	one("heap_alloc", "gauge", "bytes of live heap objects", ms.HeapAlloc)
	one("total_alloc", "counter", "bytes ever allocated for heap objects", ms.TotalAlloc)
	one("sys", "gauge", "bytes obtained from the operating system", ms.Sys)
	one("mallocs", "counter", "heap objects ever allocated", ms.Mallocs)
	one("frees", "counter", "heap objects ever freed", ms.Frees)
	one("num_gc", "counter", "completed GC cycles", uint64(ms.NumGC))
}

// number formats numeric values; ok is false for anything else.
func number(v any) (s string, ok bool) {
	switch v := v.(type) {
	case int:
		return strconv.Itoa(v), true
	case int64:
		return strconv.FormatInt(v, 10), true
	case int32:
		return strconv.FormatInt(int64(v), 10), true
	case uint64:
		return strconv.FormatUint(v, 10), true
	case uint32:
		return strconv.FormatUint(uint64(v), 10), true
	case float64:
		return formatFloat(v), true
	}
	return "", false
}

func formatFloat(f float64) string { return fmt.Sprintf("%v", f) }

// Handler serves only the expvar conversion, with the text exposition
// content type.
func Handler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", ContentType)
	WriteExpvar(w)
}

// CombinedHandler serves the metric families of the Prometheus default
// registry (Go and process collectors) followed by the expvar
// conversion, as /debug/varz does.
func CombinedHandler(w http.ResponseWriter, r *http.Request) {
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ContentType)
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(w, mf); err != nil {
			return
		}
	}
	WriteExpvar(w)
}
