package derp

import (
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

// sendQueueDepth is the capacity of each of a connection's two packet
// queues, as in the reference.
const sendQueueDepth = 32

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
func (r *packetRing) push(p queuedPacket) (old queuedPacket, evicted bool) {
	if r.items == nil {
		r.items = make([]queuedPacket, sendQueueDepth)
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
