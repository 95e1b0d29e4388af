package main

import (
	"encoding/json"
	"fmt"

	"github.com/openderp/openderp/derp"
)

// workerTotals are the packet and connection counts the workers report.
type workerTotals struct {
	sent, recv, conns, errs, leaveTimeouts, redials, cutEnds int64
}

func (w *workerTotals) add(x workerTotals) {
	w.sent += x.sent
	w.recv += x.recv
	w.conns += x.conns
	w.errs += x.errs
	w.leaveTimeouts += x.leaveTimeouts
	w.redials += x.redials
	w.cutEnds += x.cutEnds
}

// relayCounts are the relay's own packet counters.
type relayCounts struct {
	Received int64            `json:"packets_received"`
	Sent     int64            `json:"packets_sent"`
	Dropped  int64            `json:"packets_dropped"`
	ByReason map[string]int64 `json:"counter_packets_dropped_reason"`
}

// printAccounting prints where every packet the clients sent went, and
// reports whether the books balance. The soak is the relay's only
// traffic, so the relay's totals are the soak's.
//
// Three books must balance: every packet a client sent reached the relay;
// every packet the relay received was written to its receiver or dropped
// with a reason; and every packet the relay wrote reached a client, except
// those still in the relay's write buffer of a connection it closed: the
// relay counts a packet as written once it is in that buffer. Since the
// relay lets a writer finish its burst before closing a departing
// client's connection (derp/sendloop.go shutdown), that bucket must be
// empty: a packet written but never received is a failure, and a client
// receiving more than the relay wrote would be a duplicate.
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
	row := func(what string, n int64) { fmt.Printf("  %-58s %10d\n", what, n) }
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
	unflushed := r.Sent - w.recv
	row("written, then discarded unflushed when the relay closed", unflushed)
	row("unaccounted (sent - received - dropped - unflushed)", w.sent-w.recv-r.Dropped-unflushed)
	booksBalance := w.sent == r.Received && r.Received == r.Sent+r.Dropped && byReason == r.Dropped &&
		w.redials == 0 && w.leaveTimeouts == 0
	if booksBalance && unflushed == 0 {
		fmt.Println("every packet delivered or counted as dropped: yes (OK)")
		return true
	}
	fmt.Println("books do not balance (FAIL)")
	return false
}
