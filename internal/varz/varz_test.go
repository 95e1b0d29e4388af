package varz

import (
	"bytes"
	"expvar"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/key"
)

func render(t *testing.T, name string, v expvar.Var) string {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteVar(&buf, name, v); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func intVar(n int64) *expvar.Int {
	v := new(expvar.Int)
	v.Set(n)
	return v
}

func TestRenderKinds(t *testing.T) {
	fl := new(expvar.Float)
	fl.Set(2.5)
	str := new(expvar.String)
	str.Set("x")
	lm := &LabelMap{Label: "version"}
	lm.Set("1.3", intVar(4))
	plainLabel := new(expvar.Map)
	plainLabel.Set("GET", intVar(2))
	tests := []struct {
		name string
		v    expvar.Var
		want string
	}{
		{"counter_uptime_sec", intVar(7), "# TYPE uptime_sec counter\nuptime_sec 7\n"},
		{"gauge_goroutines", intVar(3), "# TYPE goroutines gauge\ngoroutines 3\n"},
		{"derp_websocket_accepts", intVar(1), "# TYPE derp_websocket_accepts counter\nderp_websocket_accepts 1\n"},
		{"some_float", fl, "# TYPE some_float gauge\nsome_float 2.5\n"},
		{"s", str, "# not exported: expvar \"s\" (Go type *expvar.String) has no Prometheus type\n"},
		{"derper_tls_request_version", lm, "derper_tls_request_version{version=\"1.3\"} 4\n"},
		{"gauge_derper_tls_active_version", lm, "# TYPE derper_tls_active_version gauge\nderper_tls_active_version{version=\"1.3\"} 4\n"},
		{"counter_labelmap_method_requests", plainLabel, "# TYPE requests counter\nrequests{method=\"GET\"} 2\n"},
		{"process_start_unix_time", expvar.Func(func() any { return int64(99) }), "process_start_unix_time 99\n"},
		{"go_version", expvar.Func(func() any { return "go1.26.0" }), "go_version{version=\"go1.26.0\"} 1\n"},
		{"counter_bootstrap_dns_queried_domains", expvar.Func(func() any { return 5 }), "# TYPE bootstrap_dns_queried_domains counter\nbootstrap_dns_queried_domains 5\n"},
		{"cmdline", expvar.Func(func() any { return []string{"derper"} }), "# not exported: expvar \"cmdline\" (Go type []string) has no Prometheus type\n"},
		{"9bad-name", intVar(1), "# TYPE _9bad_name counter\n_9bad_name 1\n"},
	}
	for _, tt := range tests {
		if got := render(t, tt.name, tt.v); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

func TestRenderSetAndHistogram(t *testing.T) {
	set := new(expvar.Map)
	set.Set("gauge_watchers", intVar(2))
	set.Set("accepts", intVar(5))
	reasons := new(expvar.Map)
	reasons.Set("gone_disconnected", intVar(1))
	reasons.Set("queue_head", intVar(0))
	set.Set("counter_packets_dropped_reason", reasons)
	h := derp.NewHistogram(0, 1, 2.5)
	h.Observe(1)
	h.Observe(2)
	h.Observe(7)
	set.Set("counter_buffered_write_frames", h)
	set.Set("version", expvar.Func(func() any { return "v" }))
	set.Set("average_queue_duration_ms", expvar.Func(func() any { return 1.5 }))
	want := `# TYPE derp_accepts counter
derp_accepts 5
derp_average_queue_duration_ms 1.5
# TYPE derp_buffered_write_frames histogram
derp_buffered_write_frames_bucket{le="0"} 0
derp_buffered_write_frames_bucket{le="1"} 1
derp_buffered_write_frames_bucket{le="2.5"} 2
derp_buffered_write_frames_bucket{le="+Inf"} 3
derp_buffered_write_frames_sum 10
derp_buffered_write_frames_count 3
# TYPE derp_packets_dropped_reason counter
derp_packets_dropped_reason{reason="gone_disconnected"} 1
derp_packets_dropped_reason{reason="queue_head"} 0
# TYPE derp_watchers gauge
derp_watchers 2
# not exported: expvar "version" (Go type string) has no Prometheus type
`
	if got := render(t, "derp", set); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestMemStats(t *testing.T) {
	got := render(t, "memstats", expvar.Func(func() any { var ms runtime.MemStats; runtime.ReadMemStats(&ms); return ms }))
	for _, n := range []string{"heap_alloc gauge", "total_alloc counter", "sys gauge", "mallocs counter", "frees counter", "num_gc counter"} {
		if !strings.Contains(got, "# TYPE memstats_"+n+"\n") {
			t.Errorf("missing memstats_%s in\n%s", n, got)
		}
	}
	if strings.Count(got, "# HELP ") != 6 {
		t.Errorf("want 6 HELP lines:\n%s", got)
	}
}

// TestDerpServerNames checks the reference Prometheus names of the derp
// server's metrics set.
func TestDerpServerNames(t *testing.T) {
	s := derp.NewServer(key.NewNode(), nil)
	defer s.Close()
	got := render(t, "derp", s.ExpVar())
	for _, want := range []string{
		"# TYPE derp_current_connections gauge\n",
		"# TYPE derp_accepts counter\n",
		"derp_packets_dropped_reason{reason=",
		"derp_packets_dropped_type{type=\"disco\"} 0\n",
		"derp_packets_received_kind{kind=\"other\"} 0\n",
		"# TYPE derp_mesh_update_batch_size histogram\n",
		"derp_buffered_write_frames_bucket{le=\"+Inf\"} 0\n",
		"# TYPE derp_clients_total gauge\n",
		"derp_average_queue_duration_ms ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if strings.Contains(got, "derp_version{") {
		t.Error("derp_version exported")
	}
}

func TestSanitize(t *testing.T) {
	tests := map[string]string{"a-b.c": "a_b_c", "": "_", "1x": "_1x", "ok:x_y": "ok:x_y", "é": "_"}
	for in, want := range tests {
		if got := Sanitize(in); got != want {
			t.Errorf("Sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCombinedHandler(t *testing.T) {
	expvar.NewInt("counter_varz_test_total").Add(3)
	rec := httptest.NewRecorder()
	CombinedHandler(rec, httptest.NewRequest("GET", "/debug/varz", nil))
	body := rec.Body.String()
	if rec.Code != 200 || !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "varz_test_total 3\n") {
		t.Errorf("code %d body:\n%s", rec.Code, body)
	}
	if i, j := strings.Index(body, "go_goroutines"), strings.Index(body, "varz_test_total"); i > j {
		t.Error("native metrics not first")
	}
}
