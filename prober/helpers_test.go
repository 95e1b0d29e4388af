package prober_test

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openderp/openderp/prober"
)

// filtered is a collector of one metric name of a Prober.
type filtered struct {
	p    *prober.Prober
	name string
}

func (f *filtered) Describe(chan<- *prometheus.Desc) {}

func (f *filtered) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric)
	go func() {
		f.p.Collect(all)
		close(all)
	}()
	for m := range all {
		if desc := m.Desc().String(); containsName(desc, f.name) {
			ch <- m
		}
	}
}

func containsName(desc, name string) bool {
	return len(desc) > 0 && slices.Contains([]string{name}, extractName(desc))
}

// extractName pulls fqName out of a Desc's String form.
func extractName(desc string) string {
	const key = `fqName: "`
	for i := 0; i+len(key) <= len(desc); i++ {
		if desc[i:i+len(key)] == key {
			rest := desc[i+len(key):]
			for j := 0; j < len(rest); j++ {
				if rest[j] == '"' {
					return rest[:j]
				}
			}
		}
	}
	return ""
}

func sorted(s []string) []string { slices.Sort(s); return s }
