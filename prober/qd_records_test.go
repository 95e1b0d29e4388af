package prober

import (
	"testing"
	"time"
)

// TestTxRecordsDrops checks the bookkeeping behind the queuing-delay
// probe's drop counter: packets older than the timeout are dropped when the
// next one is sent or when the run ends, a full list evicts its oldest, and
// a packet that arrives is never counted.
func TestTxRecordsDrops(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const timeout = time.Second
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

	r := &txRecords{cap: 3}
	steps := []struct {
		name         string
		seq          uint64
		ms           int
		wantDropped  int
		wantOverflow bool
		wantLen      int
	}{
		{"first", 1, 0, 0, false, 1},
		{"second", 2, 100, 0, false, 2},
		{"third fills", 3, 200, 0, false, 3},
		{"fourth evicts the oldest", 4, 300, 1, true, 3},
		{"after the timeout, 2 and 3 expire", 5, 1250, 2, false, 2},
	}
	for _, st := range steps {
		d, o := r.add(txRecord{seq: st.seq, sent: at(st.ms)}, timeout)
		if d != st.wantDropped || o != st.wantOverflow || r.len() != st.wantLen {
			t.Fatalf("%s: add = (%d, %v), len %d; want (%d, %v), len %d", st.name, d, o, r.len(), st.wantDropped, st.wantOverflow, st.wantLen)
		}
	}
	if sent, ok := r.take(5); !ok || !sent.Equal(at(1250)) {
		t.Fatalf("take(5) = %v, %v; want the send time of 5", sent, ok)
	}
	if _, ok := r.take(5); ok {
		t.Fatal("take(5) twice succeeded")
	}
	if _, ok := r.take(1); ok {
		t.Fatal("take(1) found an evicted packet")
	}
	// Packet 4 (sent at 300 ms) is the only one left; it expires once more
	// than the timeout has passed, not at exactly the timeout.
	if n := r.expire(at(1300), timeout); n != 0 {
		t.Fatalf("expire at exactly the timeout = %d; want 0", n)
	}
	if n := r.expire(at(1301), timeout); n != 1 || r.len() != 0 {
		t.Fatalf("expire = %d, len %d; want 1, 0", n, r.len())
	}
}
