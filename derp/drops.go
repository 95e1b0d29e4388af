package derp

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/openderp/openderp/key"
)

// Drop kinds, the kind label of the derp_packets_dropped and
// derp_bytes_dropped metrics.
const (
	kindDisco = iota
	kindOther
	numDropKinds
)

var dropKindNames = [numDropKinds]string{kindDisco: "disco", kindOther: "other"}

// DropCounters is a counter with two labels, reason (the seven drop
// reasons) and kind (disco or other), every series existing from the
// start. It is an expvar.Var whose String is a JSON object of objects,
// reason then kind, holding the counts. WritePrometheus renders it in the
// Prometheus text format.
type DropCounters struct {
	help string
	n    [numDropReasons][numDropKinds]atomic.Int64
}

func (d *DropCounters) add(r dropReason, kind int, v int64) { d.n[r][kind].Add(v) }

// Value returns the count for reason and kind, or 0 for unknown labels.
func (d *DropCounters) Value(reason, kind string) int64 {
	for r := range numDropReasons {
		for k := range numDropKinds {
			if r.String() == reason && dropKindNames[k] == kind {
				return d.n[r][k].Load()
			}
		}
	}
	return 0
}

// String implements expvar.Var.
func (d *DropCounters) String() string {
	m := make(map[string]map[string]int64, numDropReasons)
	for r := range numDropReasons {
		m[r.String()] = map[string]int64{
			"disco": d.n[r][kindDisco].Load(),
			"other": d.n[r][kindOther].Load(),
		}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// WritePrometheus writes the counter under name: a TYPE line, then a
// HELP line, then one series per reason and kind, sorted by their label
// text, as the reference renders it.
func (d *DropCounters) WritePrometheus(w io.Writer, name string) error {
	type series struct {
		labels string
		v      int64
	}
	all := make([]series, 0, numDropReasons*numDropKinds)
	for r := range numDropReasons {
		for k := range numDropKinds {
			all = append(all, series{fmt.Sprintf("reason=%q,kind=%q", r.String(), dropKindNames[k]), d.n[r][k].Load()})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].labels < all[j].labels })
	if _, err := fmt.Fprintf(w, "# TYPE %s counter\n# HELP %s %s\n", name, name, d.help); err != nil {
		return err
	}
	for _, s := range all {
		if _, err := fmt.Fprintf(w, "%s{%s} %d\n", name, s.labels, s.v); err != nil {
			return err
		}
	}
	return nil
}

// DropVars returns the labelled drop counters the reference publishes at
// the top level of expvar since v1.80, under the names
// "derp_packets_dropped" and "derp_bytes_dropped".
func (s *Server) DropVars() (packets, bytes *DropCounters) {
	return &s.metrics.droppedPkts, &s.metrics.droppedBytes
}

// recordDrop counts one dropped packet from src to dst and, when dst is
// listed in TS_DEBUG_VERBOSE_DROPS, logs it.
func (s *Server) recordDrop(src, dst key.NodePublic, pkt []byte, reason dropReason) {
	m := s.metrics
	m.packetsDropped.Add(1)
	m.dropReason[reason].Add(1)
	kind := kindOther
	if looksLikeDisco(pkt) {
		kind = kindDisco
		m.droppedDisco.Add(1)
	} else {
		m.droppedOther.Add(1)
	}
	m.droppedPkts.add(reason, kind, 1)
	m.droppedBytes.add(reason, kind, int64(len(pkt)))
	if s.env.verboseDrops[dst] && verboseDropLimit.Allow() {
		// The reason is printed as its metric label, as since v1.80.
		s.log(slog.LevelInfo, connLog{key: dst}, "drop (%s) %s -> %s", src.ShortString(), reason, dst.ShortString())
	}
}

// verboseDropLimit bounds verbose drop lines to one per 30 s after a
// burst of five, process-wide, as the reference's rate-limited logger.
var verboseDropLimit = rate.NewLimiter(rate.Every(30*time.Second), 5)
