package prober_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openderp/openderp/prober"
)

// benchProber returns a Prober with n finished probes, roughly the size
// of a fleet of n/6 nodes.
func benchProber(b *testing.B, n int) *prober.Prober {
	p := prober.New().WithOnce(true).WithMetricNamespace("derpprobe")
	b.Cleanup(func() { p.Close() })
	for i := range n {
		p.Run(fmt.Sprintf("derp/r%d/%d/tls", i/6, i), time.Minute,
			prober.Labels{"region": "r", "region_id": "1", "hostname": "h"},
			prober.ProbeClass{Class: "tls", Probe: func(context.Context) error { return nil }})
	}
	p.Wait()
	return p
}

func BenchmarkGather300(b *testing.B) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(benchProber(b, 300))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStatusPage300(b *testing.B) {
	h := benchProber(b, 300).StatusHandler("DERP Prober")
	req := httptest.NewRequest("GET", "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}
