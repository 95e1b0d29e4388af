package main

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
)

// row is one line of the table: a metric and how to show it.
type row struct {
	label string
	key   string
	unit  string
	scale float64 // multiply values by this for display (1 if zero)
}

// rows lists the table in order, for the figures plan p produces.
func rows(p plan) []row {
	var rs []row
	if !p.skipIdle {
		for _, tr := range []struct{ key, label string }{{"plain", "HTTP"}, {"tls", "TLS"}} {
			pre := "idle." + tr.key + "."
			for _, n := range p.idleSteps {
				rs = append(rs, row{fmt.Sprintf("%s: RSS per idle client, %d clients", tr.label, n), fmt.Sprintf("%srss.%d", pre, n), "KiB", 0})
			}
			for _, n := range p.idleSteps {
				rs = append(rs, row{fmt.Sprintf("%s: Go heap+stacks per idle client, %d clients", tr.label, n), fmt.Sprintf("%sheap.%d", pre, n), "KiB", 0})
			}
			rs = append(rs,
				row{tr.label + ": server CPU per handshake", pre + "hs_cpu_us", "µs", 0},
				row{tr.label + ": handshakes per second", pre + "hs_rate", "/s", 0},
			)
		}
		if p.stalled > 0 {
			rs = append(rs,
				row{fmt.Sprintf("TLS done then stalled: RSS per connection, %d connections", p.stalled), "stall.tls.rss", "KiB", 0},
				row{fmt.Sprintf("TLS done then stalled: Go heap+stacks per connection, %d connections", p.stalled), "stall.tls.heap", "KiB", 0},
			)
		}
	}
	if !p.skipRelay {
		for _, size := range p.sizes {
			for _, pairs := range p.pairs {
				w := relayCase{size, pairs, false}.prefix()
				f := relayCase{size, pairs, true}.prefix()
				what := fmt.Sprintf("%d x %d B", pairs, size)
				rs = append(rs,
					row{what + ", 32 in flight: delivered", w + "pps", "pkt/s", 0},
					row{what + ", 32 in flight: packets per server CPU-s", w + "ppcpu", "pkt/CPU-s", 0},
					row{what + ", flat out: delivered", f + "pps", "pkt/s", 0},
					row{what + ", flat out: drop fraction", f + "drop", "%", 100},
					row{what + ", flat out: packets per server CPU-s", f + "ppcpu", "pkt/CPU-s", 0},
					row{what + ", flat out ÷ 32 in flight, delivered", f + "vswin", "×", 0},
				)
			}
		}
		rs = append(rs,
			row{"RTT p50, idle", "rtt.idle.p50", "ms", 0},
			row{"RTT p99, idle", "rtt.idle.p99", "ms", 0},
		)
		for _, size := range p.sizes {
			pairs := 8
			if !slices.Contains(p.pairs, pairs) {
				pairs = p.pairs[len(p.pairs)-1]
			}
			for _, flat := range []bool{false, true} {
				c := relayCase{size, pairs, flat}
				load := fmt.Sprintf("%d x %d B %s", pairs, size, map[bool]string{false: "32 in flight", true: "flat out"}[flat])
				rs = append(rs,
					row{"RTT p50 under " + load, c.prefix() + "rtt50", "ms", 0},
					row{"RTT p99 under " + load, c.prefix() + "rtt99", "ms", 0},
				)
			}
		}
	}
	return rs
}

// derive adds figures computed from others of the same server and run:
// flat-out delivery as a fraction of the windowed one.
func derive(res results) {
	for _, ms := range res {
		for k, flat := range ms {
			pre, ok := strings.CutSuffix(k, ".flat.pps")
			if !ok {
				continue
			}
			win := ms[pre+".win.pps"]
			var r []float64
			for i := range flat {
				x := math.NaN()
				if i < len(win) && win[i] > 0 {
					x = flat[i] / win[i]
				}
				r = append(r, x)
			}
			ms[pre+".flat.vswin"] = r
		}
	}
}

// stats are the median, min and max of some values.
type stats struct {
	med, lo, hi float64
	n           int
}

func summarize(v []float64) stats {
	var s []float64
	for _, x := range v {
		if !math.IsNaN(x) {
			s = append(s, x)
		}
	}
	if len(s) == 0 {
		return stats{}
	}
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stats{med, s[0], s[len(s)-1], len(s)}
}

// ratios divides a by b run by run, over the runs both have.
func ratios(a, b []float64) []float64 {
	var r []float64
	for i := range min(len(a), len(b)) {
		if b[i] != 0 && !math.IsNaN(a[i]) && !math.IsNaN(b[i]) {
			r = append(r, a[i]/b[i])
		}
	}
	return r
}

func fmtNum(x float64) string {
	switch ax := math.Abs(x); {
	case ax == 0:
		return "0"
	case ax >= 1000:
		return fmt.Sprintf("%.0f", x)
	case ax >= 100:
		return fmt.Sprintf("%.0f", x)
	case ax >= 10:
		return fmt.Sprintf("%.1f", x)
	case ax >= 1:
		return fmt.Sprintf("%.2f", x)
	}
	return fmt.Sprintf("%.3f", x)
}

func fmtStats(s stats, scale float64, runs int) string {
	if s.n == 0 {
		return "–"
	}
	if s.n < runs {
		return fmtStatsN(s, scale) + fmt.Sprintf(" [%d runs]", s.n)
	}
	return fmtStatsN(s, scale)
}

func fmtStatsN(s stats, scale float64) string {
	if scale == 0 {
		scale = 1
	}
	if s.n == 1 {
		return fmtNum(s.med * scale)
	}
	return fmt.Sprintf("%s (%s–%s)", fmtNum(s.med*scale), fmtNum(s.lo*scale), fmtNum(s.hi*scale))
}

func fmtRatio(s stats) string {
	if s.n == 0 {
		return "–"
	}
	if s.n == 1 {
		return fmt.Sprintf("%.2f", s.med)
	}
	return fmt.Sprintf("**%.2f** (%.2f–%.2f)", s.med, s.lo, s.hi)
}

// printTable writes a Markdown table: each implementation's median (min–
// max) and openderp's figure divided by each reference's.
func printTable(w io.Writer, p plan, res results) {
	names := implOrder(res)
	ours := "openderp"
	var refs []string
	for _, n := range names {
		if n != ours {
			refs = append(refs, n)
		}
	}
	fmt.Fprintf(w, "\nMedians of %d run(s), (min–max); ratios are openderp ÷ reference, run by run.\n\n", p.runs)
	head := []string{"figure", "unit"}
	head = append(head, names...)
	for _, r := range refs {
		head = append(head, "÷ "+r)
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(head, " | "))
	fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(head)))
	for _, r := range rows(p) {
		cells := []string{r.label, r.unit}
		for _, n := range names {
			cells = append(cells, fmtStats(summarize(res[n][r.key]), r.scale, p.runs))
		}
		for _, ref := range refs {
			cells = append(cells, fmtRatio(summarize(ratios(res[ours][r.key], res[ref][r.key]))))
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
}

// implOrder lists the implementations in res, openderp first.
func implOrder(res results) []string {
	var names []string
	for _, im := range allImpls() {
		if _, ok := res[im.name]; ok {
			names = append(names, im.name)
		}
	}
	return names
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	return slices.Sorted(maps.Keys(m))
}
