package main

import (
	"encoding/json"
	"fmt"

	"github.com/openderp/openderp/derp"
)

// workerTotals are the packet and connection counts the workers report.
type workerTotals struct {
	sent, recv, conns, errs, leaveTimeouts, redials int64
}

func (w *workerTotals) add(x workerTotals) {
	w.sent += x.sent
	w.recv += x.recv
	w.conns += x.conns
	w.errs += x.errs
	w.leaveTimeouts += x.leaveTimeouts
	w.redials += x.redials
}

// relayCounts are the relay's own packet counters.
type relayCounts struct {
	Received int64            `json:"packets_received"`
	Sent     int64            `json:"packets_sent"`
	Dropped  int64            `json:"packets_dropped"`
	ByReason map[string]int64 `json:"counter_packets_dropped_reason"`
}

// printAccounting prints where every packet the clients sent went, and
// reports whether the books balance: each packet a client sent reached
// the relay, and each the relay received was either written to its
// receiver, which counted it, or dropped with a reason. The soak is the
// relay's only traffic, so its totals are the soak's.
func printAccounting(w workerTotals, s *derp.Server) bool {
	var r relayCounts
	if err := json.Unmarshal([]byte(s.ExpVar().String()), &r); err != nil {
		fmt.Printf("relay counters unreadable: %v\n", err)
		return false
	}
	var byReason int64
	for _, n := range r.ByReason {
		byReason += n
	}
	fmt.Printf("\npackets\n")
	row := func(what string, n int64) { fmt.Printf("  %-44s %10d\n", what, n) }
	row("sent by clients", w.sent)
	row("received by the relay", r.Received)
	row("written by the relay to their receiver", r.Sent)
	row("received by clients", w.recv)
	row("dropped by the relay, counted", r.Dropped)
	for _, reason := range []string{"unknown_dest", "gone_disconnected", "queue_head", "queue_tail", "write_error", "dup_client", "unknown_dest_on_fwd"} {
		if n := r.ByReason[reason]; n > 0 {
			row("  "+reason, n)
		}
	}
	unaccounted := w.sent - w.recv - r.Dropped
	row("unaccounted (sent - received - dropped)", unaccounted)
	exact := unaccounted == 0 && w.sent == r.Received && r.Received == r.Sent+r.Dropped &&
		r.Sent == w.recv && byReason == r.Dropped && w.redials == 0 && w.leaveTimeouts == 0
	fmt.Printf("every packet delivered or counted as dropped: %s\n", map[bool]string{true: "yes (OK)", false: "NO (FAIL)"}[exact])
	return exact
}
