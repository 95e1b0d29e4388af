package varz

import (
	"bytes"
	"fmt"
	"sort"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// ExpvarGatherer is a prometheus.Gatherer over the published expvar
// variables. Each Gather renders them as WriteExpvar does and parses the
// result back, so a client_golang registry can serve them next to its own
// collectors (combine both with prometheus.Gatherers) with one naming
// scheme for /debug/varz and every other endpoint.
type ExpvarGatherer struct{}

// Gather returns the metric families of the converted expvar variables,
// sorted by name.
func (ExpvarGatherer) Gather() ([]*dto.MetricFamily, error) {
	var buf bytes.Buffer
	if err := WriteExpvar(&buf); err != nil {
		return nil, fmt.Errorf("varz: rendering expvars: %w", err)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	m, err := p.TextToMetricFamilies(&buf)
	if err != nil {
		return nil, fmt.Errorf("varz: parsing rendered expvars: %w", err)
	}
	out := make([]*dto.MetricFamily, 0, len(m))
	for _, mf := range m {
		out = append(out, mf)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out, nil
}
