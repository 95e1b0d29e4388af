package varz

import (
	"bytes"
	"expvar"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/key"
)

// The derp set and the top-level labelled drop counters render together
// as valid exposition text: the labelled derp_packets_dropped replaces the
// set's unlabelled one, and the v1.76.3 aggregates stay.
func TestDropCountersAlongsideDerpSet(t *testing.T) {
	s := derp.NewServer(key.NewNode(), nil)
	defer s.Close()
	pk, by := s.DropVars()
	expvar.Publish("derp", s.ExpVar())
	expvar.Publish("derp_packets_dropped", pk)
	expvar.Publish("derp_bytes_dropped", by)
	var buf bytes.Buffer
	if err := WriteExpvar(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(out))
	if err != nil {
		t.Fatalf("exposition does not parse: %v\n%s", err, out)
	}
	tests := []struct {
		family string
		series int
		labels []string
	}{
		{"derp_packets_dropped", 14, []string{"reason", "kind"}},
		{"derp_bytes_dropped", 14, []string{"reason", "kind"}},
		{"derp_packets_dropped_reason", 7, []string{"reason"}},
		{"derp_packets_dropped_type", 2, []string{"type"}},
		{"derp_current_notideal_connections", 1, nil},
		{"derp_sclient_write_timeouts", 1, nil},
	}
	for _, tt := range tests {
		f := fams[tt.family]
		if f == nil {
			t.Errorf("family %s missing", tt.family)
			continue
		}
		if len(f.Metric) != tt.series {
			t.Errorf("%s: %d series; want %d", tt.family, len(f.Metric), tt.series)
		}
		for _, m := range f.Metric {
			if len(m.Label) != len(tt.labels) {
				t.Errorf("%s: labels %v; want %v", tt.family, m.Label, tt.labels)
				continue
			}
			for i, l := range m.Label {
				if l.GetName() != tt.labels[i] {
					t.Errorf("%s: label %d is %s; want %s", tt.family, i, l.GetName(), tt.labels[i])
				}
			}
		}
	}
	if got := fams["derp_current_notideal_connections"].GetType().String(); got != "GAUGE" {
		t.Errorf("notideal type %s", got)
	}
	if got := fams["derp_sclient_write_timeouts"].GetType().String(); got != "COUNTER" {
		t.Errorf("write timeouts type %s", got)
	}
	// TYPE before HELP, as the reference writes them.
	if !strings.Contains(out, "# TYPE derp_packets_dropped counter\n# HELP derp_packets_dropped DERP packets dropped by reason and by kind\n") {
		t.Error("TYPE/HELP order")
	}
	// The JSON form (/debug/vars) shows counts, and keeps the old key.
	if !strings.Contains(expvar.Get("derp_packets_dropped").String(), `"unknown_dest":{"disco":0,"other":0}`) {
		t.Errorf("JSON form: %s", expvar.Get("derp_packets_dropped"))
	}
	if s.ExpVar().(*expvar.Map).Get("packets_dropped") == nil {
		t.Error("derp.packets_dropped gone from the JSON form")
	}
}
