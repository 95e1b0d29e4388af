package derp

import (
	"bufio"
	"sync"
	"time"

	"github.com/openderp/openderp/key"
)

// sendBatch is the most packets the send loop takes from its queues under
// one lock acquisition.
const sendBatch = 16

// Writing is done by a goroutine that exists only while there is
// something to write: the first producer to queue work for an idle
// connection (under qmu) starts it, and it exits once the queues are empty.
// An idle connection thus costs one goroutine (its reader) and no timer
// (see keepalive.go), not two goroutines as in the reference; there is
// never more than one writer per connection. See docs/compat.md#send-queues.

// startWriting schedules the first keep-alive and lets writers start; it
// is called once ServerInfo has been written, so nothing overtakes it.
func (c *sclient) startWriting() {
	s := c.s
	c.kaDue.Store(s.monoNow() + int64(s.keepAlivePeriod()))
	s.startKeepAlives()
	c.writeLoopFunc = c.writeLoop
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.finished {
		return
	}
	c.ready = true
	if c.hasWorkLocked() {
		c.wakeLocked()
	}
}

// wakeLocked starts a writer goroutine unless one is running. qmu must be
// held.
func (c *sclient) wakeLocked() {
	if c.writing || !c.ready || c.finished {
		return
	}
	c.writing = true
	c.writers.Add(1)
	go c.writeLoopFunc() // a method value made once: "go c.writeLoop()" would allocate

}

func (c *sclient) hasWorkLocked() bool {
	return c.keepAlive || c.hasPong || c.hasRestart || len(c.peerGone) > 0 || len(c.meshEvents) > 0 ||
		c.packets.len() > 0 || c.disco.len() > 0
}

// writeLoop writes bursts until nothing is queued. On a write error it
// closes the connection, which ends the read loop and so the connection.
func (c *sclient) writeLoop() {
	defer c.writers.Done()
	for {
		c.qmu.Lock()
		if c.finished || !c.hasWorkLocked() {
			c.writing = false
			c.noteWriterIdleLocked()
			c.qmu.Unlock()
			return
		}
		keepAlive := c.keepAlive
		c.keepAlive = false
		c.qmu.Unlock()

		if err := c.writeBurst(keepAlive); err != nil {
			c.qmu.Lock()
			c.writing = false
			c.noteWriterIdleLocked()
			if c.writeErr == nil {
				c.writeErr = err
			}
			c.qmu.Unlock()
			c.nc.Close()
			return
		}
	}
}

// shutdown stops all writing: it marks c finished, lets a writer that is
// mid-burst finish that burst (bounded by finalBurstWait), closes the
// connection, drops whatever was still queued and ends c's PeerGone
// subscriptions. It returns the error that stopped a writer, if any.
//
// Letting the burst finish matters for a client that leaves gracefully
// (it stops sending but reads until the relay closes): packets a writer
// has already taken from the queue and counted as sent reach it instead
// of being discarded unflushed.
func (c *sclient) shutdown() error {
	c.qmu.Lock()
	c.finished = true
	drained := make([]queuedPacket, 0, c.packets.len()+c.disco.len())
	for _, q := range []*packetRing{&c.packets, &c.disco} {
		for {
			p, ok := q.pop()
			if !ok {
				break
			}
			drained = append(drained, p)
		}
	}
	c.peerGone, c.meshEvents = nil, nil
	c.wakeWaitersLocked()
	var burstDone <-chan struct{}
	if c.writing {
		if c.flushed == nil {
			c.flushed = make(chan struct{})
		}
		burstDone = c.flushed
	} else {
		c.noteWriterIdleLocked()
	}
	c.qmu.Unlock()

	if burstDone != nil {
		c.awaitBurst(burstDone)
	}
	c.nc.Close()
	c.writers.Wait()
	for _, p := range drained {
		c.s.recordDrop(p.src, c.key, p.buf.b, dropGoneDisconnected)
		putPacketBuf(p.buf)
	}
	c.s.unsubscribeAll(c)
	c.qmu.Lock()
	defer c.qmu.Unlock()
	return c.writeErr
}

// finalBurstWait bounds how long shutdown waits for a writer to finish
// its current burst before closing the connection under it. A smaller
// write timeout bounds it further.
const finalBurstWait = time.Second

// awaitBurst waits until done is closed (the writer stopped), the final
// burst wait is over, or the server is closing.
func (c *sclient) awaitBurst(done <-chan struct{}) {
	wait := finalBurstWait
	if c.writeTimeout > 0 && c.writeTimeout < wait {
		wait = c.writeTimeout
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-c.s.closing:
	}
}

// writerPool holds the buffered writers of connections that are writing
// right now. An idle connection holds none, which saves its buffer; the
// reference does the same with smaller buffers. Whoever takes a writer
// (writeBurst) returns it after flushing.
var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufferSize) }}

// writeBufferSize is the size of the pooled write buffers: large enough to
// batch several full-size frames per system call.
const writeBufferSize = 16 << 10

// writeBurst borrows a writer, writes a keep-alive if due and everything
// queued, flushes once and gives the writer back.
func (c *sclient) writeBurst(keepAlive bool) error {
	bw := writerPool.Get().(*bufio.Writer)
	bw.Reset(blockWatch{c})
	c.bw = bw
	defer func() {
		c.bw = nil
		bw.Reset(nil)
		writerPool.Put(bw)
	}()
	var tx txTally
	err := c.writeAll(keepAlive, &tx)
	tx.publish(c)
	if err != nil {
		return err
	}
	if bw.Buffered() > 0 {
		if err := bw.Flush(); err != nil {
			return err
		}
		c.s.metrics.bufferedWriteFrames.Observe(float64(tx.frames))
	}
	return nil
}

// writeAll writes a keep-alive if asked and then everything queued into
// c.bw, without a final flush.
func (c *sclient) writeAll(keepAlive bool, tx *txTally) error {
	if keepAlive {
		if err := WriteFrameHeader(c.bw, FrameKeepAlive, 0); err != nil {
			return err
		}
		tx.frames++
	}
	return c.drain(tx)
}

// txTally counts what one burst wrote, so that the shared counters are
// updated once per burst rather than once per packet.
type txTally struct {
	frames, pkts, bytes int
	// The queue-time average's update over the burst: after it, the
	// average is avg*qDecay + qAcc (see metrics.noteQueueTime).
	qAcc, qDecay float64
}

func (t *txTally) notePacket(n int, queued int64) {
	t.pkts++
	t.bytes += n
	if t.pkts == 1 {
		t.qDecay = 1
	}
	t.qAcc, t.qDecay = t.qAcc*queueTimeDecay+(1-queueTimeDecay)*float64(queued)/1e6, t.qDecay*queueTimeDecay
}

// publish adds the tally to the server's and c's counters.
func (t *txTally) publish(c *sclient) {
	if t.pkts == 0 {
		return
	}
	m := c.s.metrics
	m.packetsSent.Add(int64(t.pkts))
	m.bytesSent.Add(int64(t.bytes))
	m.noteQueueTimes(t.qDecay, t.qAcc)
	c.stats.txPkts.Add(int64(t.pkts))
	c.stats.txBytes.Add(int64(t.bytes))
}

// drain writes queued frames until the queues are empty, counting them in
// tx. It does not flush except when the buffer fills.
func (c *sclient) drain(tx *txTally) error {
	var batch [sendBatch]queuedPacket
	for {
		c.qmu.Lock()
		gone := c.peerGone
		c.peerGone = nil
		events := c.meshEvents
		c.meshEvents = nil
		pong, hasPong := c.pong, c.hasPong
		c.hasPong = false
		restart, hasRestart := c.restart, c.hasRestart
		c.hasRestart = false
		// Alternate between the queues so that neither starves.
		n := 0
		for n < sendBatch && (c.disco.len() > 0 || c.packets.len() > 0) {
			if p, ok := c.disco.pop(); ok {
				batch[n] = p
				n++
			}
			if n < sendBatch {
				if p, ok := c.packets.pop(); ok {
					batch[n] = p
					n++
				}
			}
		}
		if n > 0 {
			c.noteDrainedLocked()
		}
		c.qmu.Unlock()

		if len(gone) == 0 && len(events) == 0 && !hasPong && !hasRestart && n == 0 {
			return nil
		}
		if hasRestart {
			if err := c.writeSmall(FrameRestarting, append(c.scratch[:0], restart[:]...)); err != nil {
				c.dropBatch(batch[:n])
				return err
			}
			tx.frames++
		}
		for _, g := range gone {
			if err := c.writePeerGone(g.Peer, g.Reason); err != nil {
				c.dropBatch(batch[:n])
				return err
			}
			if g.Reason == PeerGoneReasonDisconnected {
				// The source left and its subscriptions with it: forget
				// it, so that c subscribes again if it comes back.
				delete(c.sentFrom, g.Peer)
				if c.lastFrom == g.Peer {
					c.lastFrom = key.NodePublic{}
				}
			}
			tx.frames++
		}
		if len(events) > 0 {
			if err := c.writeMeshEvents(events); err != nil {
				c.dropBatch(batch[:n])
				return err
			}
			tx.frames += len(events)
		}
		if hasPong {
			if err := c.writeSmall(FramePong, append(c.scratch[:0], pong[:]...)); err != nil {
				c.dropBatch(batch[:n])
				return err
			}
			c.s.metrics.sentPong.Add(1)
			tx.frames++
		}
		for i := range n {
			if err := c.writePacket(&batch[i], tx); err != nil {
				c.dropBatch(batch[i+1 : n])
				return err
			}
			tx.frames++
		}
	}
}

// dropBatch counts packets taken from the queue but never written.
func (c *sclient) dropBatch(ps []queuedPacket) {
	for i := range ps {
		c.s.recordDrop(ps[i].src, c.key, ps[i].buf.b, dropWriteError)
		putPacketBuf(ps[i].buf)
		ps[i] = queuedPacket{}
	}
}

func (c *sclient) writeSmall(t FrameType, payload []byte) error {
	return WriteFrame(c.bw, t, payload)
}

// writePacket writes one RecvPacket frame and returns the buffer to the
// pool, whatever happens.
func (c *sclient) writePacket(p *queuedPacket, tx *txTally) error {
	s := c.s
	pkt := p.buf.b
	defer func() {
		putPacketBuf(p.buf)
		*p = queuedPacket{}
	}()
	if p.src != c.lastFrom && !p.src.IsZero() {
		c.noteSender(p.src)
	}
	err := c.writeRecvPacket(p.src, pkt)
	if err != nil {
		s.recordDrop(p.src, c.key, pkt, dropWriteError)
		return err
	}
	tx.notePacket(len(pkt), s.monoNow()-p.enqueued)
	return nil
}

// noteSender subscribes c to src's departure the first time c is written
// a packet from src, and remembers src as the last source written.
func (c *sclient) noteSender(src key.NodePublic) {
	c.lastFrom = src
	if _, ok := c.sentFrom[src]; ok {
		return
	}
	if c.sentFrom == nil {
		c.sentFrom = make(map[key.NodePublic]struct{})
	}
	c.sentFrom[src] = struct{}{}
	c.stats.senders.Add(1)
	c.s.subscribePeerGone(src, c)
}

func (c *sclient) writeRecvPacket(src key.NodePublic, pkt []byte) error {
	// A zero source key means protocol version 1 framing: no key at all.
	if src.IsZero() {
		return WriteFrame(c.bw, FrameRecvPacket, pkt)
	}
	if err := WriteFrameHeader(c.bw, FrameRecvPacket, uint32(KeyLen+len(pkt))); err != nil {
		return err
	}
	if err := writeKey(c.bw, src); err != nil {
		return err
	}
	_, err := c.bw.Write(pkt)
	return err
}

func (c *sclient) writePeerGone(peer key.NodePublic, reason PeerGoneReasonType) error {
	if err := c.writeSmall(FramePeerGone, appendPeerGone(c.scratch[:0], peer, reason)); err != nil {
		return err
	}
	switch reason {
	case PeerGoneReasonNotHere:
		c.s.metrics.peerGoneNotHere.Add(1)
	default:
		c.s.metrics.peerGoneDisconnected.Add(1)
	}
	return nil
}

// writeMeshEvents writes watcher records without flushing between them.
func (c *sclient) writeMeshEvents(events []meshEvent) error {
	c.s.metrics.meshUpdateBatchSize.Observe(float64(len(events)))
	c.s.metrics.meshUpdateLoopCount.Observe(1)
	for _, ev := range events {
		var err error
		if ev.gone {
			err = c.writePeerGone(ev.key, PeerGoneReasonDisconnected)
		} else {
			err = c.writeSmall(FramePeerPresent, appendPeerPresent(c.scratch[:0], ev.key, ev.ipPort, ev.flags, ev.app))
		}
		if err != nil {
			return err
		}
	}
	return nil
}
