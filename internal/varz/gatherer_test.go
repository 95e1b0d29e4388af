package varz

import (
	"expvar"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestExpvarGatherer checks that published variables come back as typed,
// labelled metric families and merge cleanly with a registry.
func TestExpvarGatherer(t *testing.T) {
	const set = "test_gatherer_set"
	if expvar.Get(set) == nil {
		m := new(expvar.Map)
		m.Set("counter_widgets", intVar(7))
		m.Set("gauge_level", intVar(3))
		expvar.Publish(set, m)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "test_registry_gauge", Help: "x"}, func() float64 { return 1 }))
	mfs, err := prometheus.Gatherers{reg, ExpvarGatherer{}}.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	vals := map[string]float64{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf.GetType().String()
		if len(mf.Metric) == 1 {
			m := mf.Metric[0]
			switch {
			case m.Counter != nil:
				vals[mf.GetName()] = m.Counter.GetValue()
			case m.Gauge != nil:
				vals[mf.GetName()] = m.Gauge.GetValue()
			}
		}
	}
	tests := []struct {
		name, typ string
		val       float64
	}{
		{set + "_widgets", "COUNTER", 7},
		{set + "_level", "GAUGE", 3},
		{"test_registry_gauge", "GAUGE", 1},
	}
	for _, tt := range tests {
		if got[tt.name] != tt.typ || vals[tt.name] != tt.val {
			t.Errorf("%s: type %q value %v, want %q %v", tt.name, got[tt.name], vals[tt.name], tt.typ, tt.val)
		}
	}
}
