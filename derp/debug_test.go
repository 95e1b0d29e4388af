package derp

import (
	"encoding/json"
	"math"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseSS(t *testing.T) {
	out := []byte(`ESTAB 0      0      127.0.0.1:3340 127.0.0.1:51234
	 cubic wscale:7,7 rto:204 rtt:0.05/0.025 bytes_sent:1234 bytes_received:5678 segs_out:10
ESTAB 0      0      [::1]:3340 [::ffff:10.0.0.1]:443
	 cubic bytes_sent:1 bytes_received:2
garbage line
	 bytes_sent:9
`)
	got := parseSS(out)
	want := map[netip.AddrPort][2]int64{
		netip.MustParseAddrPort("127.0.0.1:51234"): {1234, 5678},
		netip.MustParseAddrPort("10.0.0.1:443"):    {1, 2},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%v: got %v, want %v", k, got[k], v)
		}
	}
}

func TestServeDebugTraffic(t *testing.T) {
	ts := newTestServer(t)
	ts.dial(t)
	req := httptest.NewRequest("GET", "/debug/traffic", nil)
	ctx, cancel := contextWithCancel(req)
	req = req.WithContext(ctx)
	w := httptest.NewRecorder()
	cancel() // one round, then stop
	ts.s.ServeDebugTraffic(w, req)
	body := w.Body.String()
	if !strings.HasPrefix(body, "cannot read the socket counters with ss") && !strings.HasSuffix(body, "\n") {
		t.Fatalf("body %q", body)
	}
}

func TestExpVarNames(t *testing.T) {
	ts := newTestServer(t)
	a, b := ts.dial(t), ts.dial(t)
	a.Send(b.PublicKey(), []byte("x"))
	recvPacket(t, b)
	var m map[string]any
	if err := json.Unmarshal([]byte(ts.s.ExpVar().String()), &m); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"gauge_memstats_sys0", "gauge_watchers", "gauge_current_file_descriptors",
		"gauge_current_connections", "gauge_current_home_connections", "gauge_clients_total",
		"gauge_clients_local", "gauge_clients_remote", "gauge_current_dup_client_keys",
		"gauge_current_dup_client_conns", "counter_total_dup_client_conns", "accepts",
		"bytes_received", "bytes_sent", "packets_dropped", "counter_packets_dropped_reason",
		"counter_packets_dropped_type", "counter_packets_received_kind", "packets_sent",
		"packets_received", "unknown_frames", "home_moves_in", "home_moves_out", "got_ping",
		"sent_pong", "peer_gone_disconnected_frames", "peer_gone_not_here_frames",
		"packets_forwarded_out", "packets_forwarded_in", "multiforwarder_created",
		"multiforwarder_deleted", "packet_forwarder_delete_other_value",
		"average_queue_duration_ms", "counter_tcp_rtt", "counter_mesh_update_batch_size",
		"counter_mesh_update_loop_count", "counter_buffered_write_frames", "version",
		"counter_protocol_errors", "counter_push_back_waits",
	} {
		if _, ok := m[name]; !ok {
			t.Errorf("missing expvar %q", name)
		}
	}
	reasons := m["counter_packets_dropped_reason"].(map[string]any)
	if len(reasons) != 7 {
		t.Errorf("drop reasons %v", reasons)
	}
	if m["gauge_current_connections"].(float64) != 2 || m["gauge_clients_total"].(float64) != 2 {
		t.Errorf("connections %v clients %v", m["gauge_current_connections"], m["gauge_clients_total"])
	}
	if m["packets_sent"].(float64) != 1 || m["bytes_received"].(float64) != 1 {
		t.Errorf("packets_sent %v bytes_received %v", m["packets_sent"], m["bytes_received"])
	}
}

func TestHistogram(t *testing.T) {
	h := NewHistogram(1, 5, 10)
	for _, v := range []float64{0, 1, 3, 7, 100} {
		h.Observe(v)
	}
	bounds, cum, sum, count := h.Snapshot()
	if len(bounds) != 3 || cum[0] != 2 || cum[1] != 3 || cum[2] != 4 || sum != 111 || count != 5 {
		t.Fatalf("snapshot %v %v %v %v", bounds, cum, sum, count)
	}
	if !strings.Contains(h.String(), `"count":5`) {
		t.Fatalf("String %s", h.String())
	}
}

// TestHistogramConcurrent observes from many goroutines at once (run it
// with -race): nothing is lost, and Observe allocates nothing.
func TestHistogramConcurrent(t *testing.T) {
	h := NewHistogram(1, 5, 10)
	const workers, each = 8, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				h.Observe(float64((w + i) % 12)) // 0..11: every bucket and above
			}
		})
	}
	wg.Wait()
	_, cum, sum, count := h.Snapshot()
	if count != workers*each {
		t.Fatalf("count %d, want %d", count, workers*each)
	}
	var wantSum float64
	var wantCum [3]uint64
	for w := range workers {
		for i := range each {
			v := (w + i) % 12
			wantSum += float64(v)
			for j, b := range []int{1, 5, 10} {
				if v <= b {
					wantCum[j]++
				}
			}
		}
	}
	if sum != wantSum || cum[0] != wantCum[0] || cum[1] != wantCum[1] || cum[2] != wantCum[2] {
		t.Fatalf("cumulative %v sum %v; want %v and %v", cum, sum, wantCum, wantSum)
	}
	if n := testing.AllocsPerRun(100, func() { h.Observe(3) }); n != 0 {
		t.Fatalf("Observe allocates %v times", n)
	}
}

func TestMetaCert(t *testing.T) {
	s := NewServer(keyForTest(), nil)
	cert, err := parseCertForTest(s.MetaCert())
	if err != nil {
		t.Fatal(err)
	}
	if cert.SerialNumber.Int64() != ProtocolVersion {
		t.Fatalf("serial %v", cert.SerialNumber)
	}
	if cert.Subject.CommonName != "derpkey"+s.PublicKey().UntypedHexString() {
		t.Fatalf("CN %q", cert.Subject.CommonName)
	}
	if cert.IsCA || !cert.BasicConstraintsValid || len(cert.Extensions) != 1 {
		t.Fatalf("extensions %v", cert.Extensions)
	}
}

func TestRTTSampling(t *testing.T) {
	ts := newTestServer(t)
	ts.dial(t)
	pc := pipeClient(t, ts.s)
	_ = pc
	ts.s.sampleRTTs()
	ts.s.sampleRTTs() // non-TCP connections are counted once
	var m map[string]int
	json.Unmarshal([]byte(ts.s.metrics.tcpRTT.String()), &m)
	sampled := 0
	for _, le := range []string{"10ms", "20ms", "50ms", "100ms", "150ms", "250ms", "500ms", "inf"} {
		sampled += m[le]
	}
	if m["non-tcp"] != 1 {
		t.Errorf("non-tcp = %d, want 1", m["non-tcp"])
	}
	if runtime.GOOS == "linux" && sampled != 2 {
		t.Errorf("sampled %d RTTs, want 2 (%v)", sampled, m)
	}
	for rtt, want := range map[time.Duration]string{time.Millisecond: "10ms", 120 * time.Millisecond: "150ms", time.Second: "inf"} {
		if got := rttBucket(rtt); got != want {
			t.Errorf("rttBucket(%v) = %q, want %q", rtt, got, want)
		}
	}
}

// TestQueueTimeTally checks that a burst's tally moves the average queue
// duration exactly as noting each packet's wait one by one would.
func TestQueueTimeTally(t *testing.T) {
	tests := []struct {
		name  string
		start float64   // average before, in ms
		waits []float64 // each packet's wait, in ms
	}{
		{"one packet", 0, []float64{3}},
		{"from a non-zero average", 7, []float64{1, 2, 3}},
		{"a long burst", 0.5, []float64{0, 10, 0, 10, 0, 10, 0, 10, 0, 10, 0, 10, 0, 10, 0, 10, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			one, burst := newMetrics(), newMetrics()
			one.avgQueueMillis.Store(math.Float64bits(tt.start))
			burst.avgQueueMillis.Store(math.Float64bits(tt.start))
			var tx txTally
			for _, w := range tt.waits {
				one.noteQueueTime(int64(w * 1e6))
				tx.notePacket(100, int64(w*1e6))
			}
			burst.noteQueueTimes(tx.qDecay, tx.qAcc)
			want := math.Float64frombits(one.avgQueueMillis.Load())
			got := math.Float64frombits(burst.avgQueueMillis.Load())
			if math.Abs(got-want) > 1e-9 {
				t.Errorf("average after the burst = %v, want %v", got, want)
			}
			if tx.pkts != len(tt.waits) || tx.bytes != 100*len(tt.waits) {
				t.Errorf("tally %d packets, %d bytes; want %d, %d", tx.pkts, tx.bytes, len(tt.waits), 100*len(tt.waits))
			}
		})
	}
}
