package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/openderp/openderp/prober"
)

// onceResult is one probe's line of -once -json output.
type onceResult struct {
	Name    string  `json:"name"`
	Result  string  `json:"result"`  // "good" or "bad"
	Latency float64 `json:"latency"` // seconds; 0 for a failure
	Error   string  `json:"error,omitempty"`
}

// reportOnceJSON writes one JSON object per finished probe to w, good ones
// first, each group sorted by name, and returns errProbesFailed if any
// probe failed.
func reportOnceJSON(p *prober.Prober, w io.Writer) error {
	var rs []onceResult
	for name, info := range p.ProbeInfo() {
		if !info.Finished() {
			continue
		}
		r := onceResult{Name: name, Result: "good", Latency: info.Latency.Seconds()}
		if !info.Succeeded() {
			r.Result, r.Latency, r.Error = "bad", 0, info.Error
		}
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b onceResult) int {
		if a.Result != b.Result {
			return -strings.Compare(a.Result, b.Result) // "good" before "bad"
		}
		return strings.Compare(a.Name, b.Name)
	})
	enc := json.NewEncoder(w)
	bad := 0
	for _, r := range rs {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("writing results: %w", err)
		}
		if r.Result == "bad" {
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("%w: %d of %d", errProbesFailed, bad, len(rs))
	}
	return nil
}
