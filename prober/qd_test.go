package prober_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/openderp/openderp/derpmap"
	"github.com/openderp/openderp/prober"
	"github.com/openderp/openderp/prober/probertest"
)

// gatherOne returns the metric family name from p, or fails.
func gatherOne(t *testing.T, p *prober.Prober, name string) *dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(p)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestQueuingDelayProbe(t *testing.T) {
	ca := probertest.NewCA(t)
	a := probertest.StartNode(t, probertest.NodeOpts{CA: ca, MeshKey: testMeshKey})
	b := probertest.StartNode(t, probertest.NodeOpts{CA: ca, MeshKey: testMeshKey})
	probertest.Mesh(t, ca, testMeshKey, a, b)
	// c does not mesh with a: what a's clients send to c's are lost.
	c := probertest.StartNode(t, probertest.NodeOpts{CA: ca})
	src := &mapSource{m: &derpmap.Map{Regions: map[int]*derpmap.Region{
		1: probertest.Region(1, "lab", a.MapNode("a", 1), b.MapNode("b", 1)),
		2: probertest.Region(2, "split", a.MapNode("a2", 2), c.MapNode("c", 2)),
	}}}
	p := prober.New().WithOnce(true).WithMetricNamespace("derpprobe")
	defer p.Close()
	dp, err := prober.DERP(p, "https://example.invalid/", prober.WithFetch(src.fetch),
		prober.WithTLSConfig(ca.TLSConfig()), prober.WithQueuingDelayProbing(50, 2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	p.Run("derpmap-probe", 10*time.Second, nil, dp.ProbeMap())
	p.Wait()

	infos := p.ProbeInfo()
	for _, tt := range []struct {
		name    string
		wantErr string
	}{
		{"derp/lab/a/a/qd", ""},
		{"derp/lab/a/b/qd", ""},
		{"derp/lab/b/a/qd", ""},
		{"derp/lab/b/b/qd", ""},
		{"derp/split/a2/c/qd", "queuing-delay packets dropped"},
		{"derp/split/c/a2/qd", "queuing-delay packets dropped"},
		{"derp/split/c/c/qd", ""},
	} {
		info, ok := infos[tt.name]
		switch {
		case !ok:
			t.Errorf("no probe %s", tt.name)
		case info.Class != "derp_qd" || info.Interval != -10*time.Second:
			t.Errorf("%s: class %q interval %v; want derp_qd, -10s", tt.name, info.Class, info.Interval)
		case tt.wantErr == "" && !info.Succeeded():
			t.Errorf("%s failed: %s", tt.name, info.Error)
		case tt.wantErr != "" && !strings.Contains(info.Error, tt.wantErr):
			t.Errorf("%s: error %q; want %q", tt.name, info.Error, tt.wantErr)
		}
	}
	if l := infos["derp/lab/a/b/qd"].Labels["derp_path"]; l != "mesh" {
		t.Errorf("derp_path = %q; want mesh", l)
	}

	hist := gatherOne(t, p, "derpprobe_derp_qd_probe_delays_seconds")
	drops := gatherOne(t, p, "derpprobe_derp_qd_probe_dropped_packets")
	if len(hist.GetMetric()) != 8 || len(drops.GetMetric()) != 8 {
		t.Fatalf("%d histograms, %d drop counters; want 8 each", len(hist.GetMetric()), len(drops.GetMetric()))
	}
	for _, m := range hist.GetMetric() {
		name := labelOf(m, "name")
		h := m.GetHistogram()
		if strings.Contains(name, "/split/a2/c/") || strings.Contains(name, "/split/c/a2/") {
			continue
		}
		if h.GetSampleCount() < 50 || len(h.GetBucket()) != 8 || h.GetBucket()[7].GetUpperBound() != 1 {
			t.Errorf("%s: histogram %v", name, h)
		}
		var prev uint64
		for _, b := range h.GetBucket() {
			if b.GetCumulativeCount() < prev {
				t.Errorf("%s: buckets not cumulative: %v", name, h)
			}
			prev = b.GetCumulativeCount()
		}
	}
	for _, m := range drops.GetMetric() {
		n := m.GetCounter().GetValue()
		name := labelOf(m, "name")
		if split := strings.Contains(name, "/split/a2/c/") || strings.Contains(name, "/split/c/a2/"); split != (n > 0) {
			t.Errorf("%s: %v dropped packets", name, n)
		}
	}
}
