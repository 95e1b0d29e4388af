package prober

import (
	"fmt"
	"html/template"
	"strings"
	"time"
)

// Sparkline geometry, in SVG user units.
const (
	sparkWidth  = 100
	sparkHeight = 30
	sparkLine   = 20 // height of the latency line's band; result marks below
)

// sparkline draws a probe's recent history as an inline SVG: the recent
// latencies as a line scaled to their maximum, and under it one mark per
// recent result, green for success and red for failure. It needs no
// script, stylesheet or font from elsewhere. With no history it is empty.
func sparkline(results []bool, latencies []time.Duration) template.HTML {
	if len(results) == 0 && len(latencies) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="spark" width="%d" height="%d" viewBox="0 0 %d %d" role="img">`,
		sparkWidth, sparkHeight, sparkWidth, sparkHeight)
	ok := 0
	for _, r := range results {
		if r {
			ok++
		}
	}
	fmt.Fprintf(&b, `<title>%d of %d recent runs succeeded</title>`, ok, len(results))
	var max time.Duration
	for _, l := range latencies {
		max = maxDur(max, l)
	}
	if len(latencies) > 0 {
		b.WriteString(`<polyline class="latency" fill="none" stroke="#36c" stroke-width="1.5" points="`)
		for i, l := range latencies {
			x := sparkX(i, len(latencies))
			y := float64(sparkLine - 1)
			if max > 0 {
				y = 1 + float64(sparkLine-2)*(1-float64(l)/float64(max))
			}
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%.1f,%.1f", x, y)
		}
		b.WriteString(`"/>`)
	}
	w := float64(sparkWidth) / float64(historyLen)
	for i, r := range results {
		class, color := "ok", "#2a2"
		if !r {
			class, color = "fail", "#d22"
		}
		fmt.Fprintf(&b, `<rect class="%s" x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>`,
			class, float64(i)*w+0.5, sparkLine+2, w-1, sparkHeight-sparkLine-2, color)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// sparkX spreads n points over the width.
func sparkX(i, n int) float64 {
	if n <= 1 {
		return sparkWidth / 2
	}
	return 1 + float64(i)*float64(sparkWidth-2)/float64(n-1)
}

func maxDur(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}
