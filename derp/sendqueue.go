package derp

import (
	"fmt"
	"os"
	"strconv"
	"sync"

	"github.com/openderp/openderp/key"
)

// Packet buffers come from size-classed pools so that relaying a packet
// allocates nothing once the pools are warm. A buffer is taken by the read
// loop that receives the packet; ownership passes to the destination's send
// queue when the packet is queued, and whoever finally writes or drops the
// packet returns the buffer with putPacketBuf.
var packetSizeClasses = [...]int{256, 1536, 4096, 16 << 10, MaxPacketSize}

var packetPools [len(packetSizeClasses)]sync.Pool

// packetBuf is a pooled packet buffer; b holds the packet itself.
type packetBuf struct {
	b     []byte
	class int8
}

// getPacketBuf returns a buffer holding n bytes of unspecified content.
func getPacketBuf(n int) *packetBuf {
	for i, size := range packetSizeClasses {
		if n <= size {
			if pb, ok := packetPools[i].Get().(*packetBuf); ok {
				pb.b = pb.b[:n]
				return pb
			}
			return &packetBuf{b: make([]byte, n, size), class: int8(i)}
		}
	}
	// Larger than any class: only possible for a caller bug, as frames
	// are checked against MaxPacketSize first. Serve it unpooled.
	return &packetBuf{b: make([]byte, n), class: -1}
}

// putPacketBuf returns pb to its pool. pb must not be used afterwards.
func putPacketBuf(pb *packetBuf) {
	if pb == nil || pb.class < 0 {
		return
	}
	packetPools[pb.class].Put(pb)
}

// queuedPacket is a packet waiting in a send queue.
type queuedPacket struct {
	src      key.NodePublic
	buf      *packetBuf
	enqueued int64 // monotonic nanoseconds since the server started
}

// defaultSendQueueDepth is the capacity of each of a connection's two
// packet queues unless SendQueueDepthEnv says otherwise, as in the
// reference.
const defaultSendQueueDepth = 32

// SendQueueDepthEnv names the environment variable that, when it holds a
// positive integer, sets the capacity of each of a connection's two packet
// queues (LATEST 4.2). NewServer reads it once.
const SendQueueDepthEnv = "TS_DEBUG_DERP_PER_CLIENT_SEND_QUEUE_DEPTH"

// SendQueueDepthFromEnv returns the queue depth SendQueueDepthEnv asks
// for: the default (32) when it is unset, zero or negative, and an error
// when it is not an integer, which a daemon should treat as fatal.
func SendQueueDepthFromEnv() (int, error) {
	v := os.Getenv(SendQueueDepthEnv)
	if v == "" {
		return defaultSendQueueDepth, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return defaultSendQueueDepth, fmt.Errorf("derp: invalid integer environment variable %s=%q: %w", SendQueueDepthEnv, v, err)
	}
	if n <= 0 {
		return defaultSendQueueDepth, nil
	}
	return n, nil
}

// packetRing is a fixed-capacity FIFO of packets. Its storage is allocated
// on first use so that idle connections do not pay for it. It is not safe
// for concurrent use; sclient.qmu guards each ring.
type packetRing struct {
	items []queuedPacket
	head  int // index of the oldest packet
	n     int // number of packets queued
}

// push appends p. When the ring is full it first evicts the oldest packet,
// which it returns with evicted set, so the caller can count the drop.
// depth is the ring's capacity, fixed by the first push.
func (r *packetRing) push(p queuedPacket, depth int) (old queuedPacket, evicted bool) {
	if r.items == nil {
		r.items = make([]queuedPacket, depth)
	}
	if r.n == len(r.items) {
		old, _ = r.pop()
		evicted = true
	}
	r.items[(r.head+r.n)%len(r.items)] = p
	r.n++
	return old, evicted
}

// pop removes and returns the oldest packet.
func (r *packetRing) pop() (queuedPacket, bool) {
	if r.n == 0 {
		return queuedPacket{}, false
	}
	p := r.items[r.head]
	r.items[r.head] = queuedPacket{}
	r.head = (r.head + 1) % len(r.items)
	r.n--
	return p, true
}

func (r *packetRing) len() int { return r.n }
