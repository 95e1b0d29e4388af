package derp

import (
	"encoding/json"
	"expvar"
	"math"
	"os"
	"runtime"
	"sync/atomic"
)

// dropReason says why the server discarded a packet. Its String is the
// label of the packets_dropped_reason metric.
type dropReason int

const (
	dropUnknownDest      dropReason = iota // no local connection and no forwarder
	dropUnknownDestOnFwd                   // forwarded packet for a key with no local connection
	dropGoneDisconnected                   // destination left before the packet was written
	dropQueueHead                          // evicted as the oldest packet of a full queue
	dropQueueTail                          // a new packet that found no room
	dropWriteError                         // writing it to the destination failed
	dropDupClient                          // destination has several connections, none active
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{
	dropUnknownDest:      "unknown_dest",
	dropUnknownDestOnFwd: "unknown_dest_on_fwd",
	dropGoneDisconnected: "gone_disconnected",
	dropQueueHead:        "queue_head",
	dropQueueTail:        "queue_tail",
	dropWriteError:       "write_error",
	dropDupClient:        "dup_client",
}

func (r dropReason) String() string { return dropReasonNames[r] }

// metrics holds the server's counters. Every field is safe for concurrent
// use; the expvar.Int fields are atomics.
type metrics struct {
	accepts             expvar.Int
	curConns            expvar.Int // gauge_current_connections
	curHomeConns        expvar.Int
	curNotIdealConns    expvar.Int // gauge_current_notideal_connections
	writeTimeouts       expvar.Int // sclient_write_timeouts
	dupClientKeys       expvar.Int
	dupClientConns      expvar.Int
	dupClientConnsTotal expvar.Int
	watchers            expvar.Int

	bytesReceived   expvar.Int
	bytesSent       expvar.Int
	packetsReceived expvar.Int
	packetsSent     expvar.Int
	packetsDropped  expvar.Int
	dropReason      [numDropReasons]expvar.Int
	droppedDisco    expvar.Int
	droppedOther    expvar.Int
	droppedPkts     DropCounters // derp_packets_dropped{reason,kind}, top level
	droppedBytes    DropCounters // derp_bytes_dropped{reason,kind}, top level
	rateLimitWaited expvar.Int   // rate_limit_per_client_waited
	receivedDisco   expvar.Int
	receivedOther   expvar.Int
	unknownFrames   expvar.Int
	pushBackWaits   expvar.Int // counter_push_back_waits: periods readers waited for room
	protocolErrors  expvar.Int // connections ended for a malformed, oversized or forbidden frame
	logSuppressed   expvar.Int // connection error lines not written (see logLimiter)

	homeMovesIn             expvar.Int
	homeMovesOut            expvar.Int
	gotPing                 expvar.Int
	sentPong                expvar.Int
	peerGoneDisconnected    expvar.Int
	peerGoneNotHere         expvar.Int
	packetsForwardedOut     expvar.Int
	packetsForwardedIn      expvar.Int
	multiForwarderCreated   expvar.Int
	multiForwarderDeleted   expvar.Int
	forwarderDeleteOtherVal expvar.Int

	avgQueueMillis atomic.Uint64 // float64 bits; exponential moving average

	tcpRTT              expvar.Map // label le
	meshUpdateBatchSize *Histogram
	meshUpdateLoopCount *Histogram
	bufferedWriteFrames *Histogram
	memstatsSys0        expvar.Int
}

func newMetrics() *metrics {
	m := &metrics{
		meshUpdateBatchSize: NewHistogram(0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
		meshUpdateLoopCount: NewHistogram(0, 1, 2, 5, 10, 20, 50, 100),
		bufferedWriteFrames: NewHistogram(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20, 25, 50, 100),
	}
	m.droppedPkts.help = "DERP packets dropped by reason and by kind"
	m.droppedBytes.help = "DERP bytes dropped by reason and by kind"
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.memstatsSys0.Set(int64(ms.Sys))
	for _, le := range []string{"10ms", "20ms", "50ms", "100ms", "150ms", "250ms", "500ms", "inf", "non-tcp", "error"} {
		m.tcpRTT.Set(le, new(expvar.Int))
	}
	return m
}

// queueTimeDecay is the weight of the old average queue duration when a
// packet's wait is added.
const queueTimeDecay = 0.9

// noteQueueTime feeds the average queue duration with one packet's wait.
func (m *metrics) noteQueueTime(nanos int64) {
	m.noteQueueTimes(queueTimeDecay, (1-queueTimeDecay)*float64(nanos)/1e6)
}

// noteQueueTimes applies several packets' updates of the average queue
// duration at once: the average becomes avg*decay + acc.
func (m *metrics) noteQueueTimes(decay, acc float64) {
	for {
		old := m.avgQueueMillis.Load()
		avg := math.Float64frombits(old)
		next := avg*decay + acc
		if m.avgQueueMillis.CompareAndSwap(old, math.Float64bits(next)) {
			return
		}
	}
}

// expvarMap builds the "derp" metrics set. The keys and their type
// prefixes are those of the reference, so existing dashboards keep working.
func (s *Server) expvarMap() *expvar.Map {
	m := s.metrics
	v := new(expvar.Map)
	v.Set("gauge_memstats_sys0", &m.memstatsSys0)
	v.Set("gauge_watchers", &m.watchers)
	v.Set("gauge_current_file_descriptors", expvar.Func(func() any { return int64(countOpenFDs()) }))
	v.Set("gauge_current_connections", &m.curConns)
	v.Set("gauge_current_home_connections", &m.curHomeConns)
	v.Set("gauge_current_notideal_connections", &m.curNotIdealConns)
	v.Set("gauge_clients_total", expvar.Func(func() any { return int64(s.numClients(true)) }))
	v.Set("gauge_clients_local", expvar.Func(func() any { return int64(s.numClients(false)) }))
	v.Set("gauge_clients_remote", expvar.Func(func() any {
		region, local := s.clientCounts()
		return int64(region - local)
	}))
	v.Set("gauge_current_dup_client_keys", &m.dupClientKeys)
	v.Set("gauge_current_dup_client_conns", &m.dupClientConns)
	v.Set("counter_total_dup_client_conns", &m.dupClientConnsTotal)
	v.Set("accepts", &m.accepts)
	v.Set("bytes_received", &m.bytesReceived)
	v.Set("bytes_sent", &m.bytesSent)
	v.Set("packets_dropped", &m.packetsDropped)
	reasons := new(expvar.Map)
	for r := range numDropReasons {
		reasons.Set(r.String(), &m.dropReason[r])
	}
	v.Set("counter_packets_dropped_reason", reasons)
	dropType := new(expvar.Map)
	dropType.Set("disco", &m.droppedDisco)
	dropType.Set("other", &m.droppedOther)
	v.Set("counter_packets_dropped_type", dropType)
	recvKind := new(expvar.Map)
	recvKind.Set("disco", &m.receivedDisco)
	recvKind.Set("other", &m.receivedOther)
	v.Set("counter_packets_received_kind", recvKind)
	v.Set("packets_sent", &m.packetsSent)
	v.Set("packets_received", &m.packetsReceived)
	v.Set("unknown_frames", &m.unknownFrames)
	v.Set("sclient_write_timeouts", &m.writeTimeouts)
	// An openderp addition; see docs/security.md#derp-frames.
	v.Set("counter_protocol_errors", &m.protocolErrors)
	// Also an openderp addition; see docs/compat.md#push-back.
	v.Set("counter_push_back_waits", &m.pushBackWaits)
	// Also an openderp addition; see docs/compat.md#log-rate-limit.
	v.Set("counter_log_lines_suppressed", &m.logSuppressed)
	v.Set("home_moves_in", &m.homeMovesIn)
	v.Set("home_moves_out", &m.homeMovesOut)
	v.Set("got_ping", &m.gotPing)
	v.Set("sent_pong", &m.sentPong)
	v.Set("peer_gone_disconnected_frames", &m.peerGoneDisconnected)
	v.Set("peer_gone_not_here_frames", &m.peerGoneNotHere)
	v.Set("packets_forwarded_out", &m.packetsForwardedOut)
	v.Set("packets_forwarded_in", &m.packetsForwardedIn)
	v.Set("multiforwarder_created", &m.multiForwarderCreated)
	v.Set("multiforwarder_deleted", &m.multiForwarderDeleted)
	v.Set("packet_forwarder_delete_other_value", &m.forwarderDeleteOtherVal)
	v.Set("average_queue_duration_ms", expvar.Func(func() any {
		return math.Float64frombits(m.avgQueueMillis.Load())
	}))
	v.Set("counter_tcp_rtt", &m.tcpRTT)
	v.Set("counter_mesh_update_batch_size", m.meshUpdateBatchSize)
	v.Set("counter_mesh_update_loop_count", m.meshUpdateLoopCount)
	v.Set("counter_buffered_write_frames", m.bufferedWriteFrames)
	v.Set("version", expvar.Func(func() any { return Version }))
	return v
}

// Version is the version string the server reports in its metrics.
var Version = "openderp-dev"

// countOpenFDs returns the number of open file descriptors of the process,
// or 0 where that cannot be read cheaply.
func countOpenFDs() int {
	f, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return 0
	}
	return len(names) - 1 // minus the descriptor used to list them
}

// Histogram counts observations into fixed buckets. It is an expvar.Var
// whose String is a JSON object with the bucket bounds, the cumulative
// count per bound, the sum and the count; Snapshot gives the same values to
// a metrics exporter. It is safe for concurrent use, and Observe takes no
// lock: writers of every connection observe into the same histograms, once
// per write burst.
type Histogram struct {
	bounds  []float64
	counts  []atomic.Uint64 // non-cumulative, one per bound
	over    atomic.Uint64   // observations above the last bound (or NaN)
	sumBits atomic.Uint64   // math.Float64bits of the sum
}

// NewHistogram returns a histogram with the given ascending bucket bounds.
func NewHistogram(bounds ...float64) *Histogram {
	return &Histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds))}
}

// Observe records one value.
func (h *Histogram) Observe(v float64) {
	i := 0
	for i < len(h.bounds) && !(v <= h.bounds[i]) {
		i++
	}
	if i < len(h.counts) {
		h.counts[i].Add(1)
	} else {
		h.over.Add(1)
	}
	for {
		old := h.sumBits.Load()
		if h.sumBits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// Snapshot returns the bucket bounds, the cumulative number of
// observations at or below each bound, the sum and the total count. The
// count always agrees with the buckets; observations under way while it
// runs may be in the buckets but not yet in the sum.
func (h *Histogram) Snapshot() (bounds []float64, cumulative []uint64, sum float64, count uint64) {
	cumulative = make([]uint64, len(h.counts))
	var run uint64
	for i := range h.counts {
		run += h.counts[i].Load()
		cumulative[i] = run
	}
	return h.bounds, cumulative, math.Float64frombits(h.sumBits.Load()), run + h.over.Load()
}

// String implements expvar.Var.
func (h *Histogram) String() string {
	bounds, cum, sum, count := h.Snapshot()
	b, _ := json.Marshal(struct {
		Bounds     []float64 `json:"bounds"`
		Cumulative []uint64  `json:"cumulative"`
		Sum        float64   `json:"sum"`
		Count      uint64    `json:"count"`
	}{bounds, cum, sum, count})
	return string(b)
}
