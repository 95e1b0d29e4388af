package derp

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/openderp/openderp/key"
)

// defaultWriteTimeout bounds the writing of each frame to a client.
const defaultWriteTimeout = 2 * time.Second

// keepAliveJitter is the largest random addition to KeepAlive, fixed per
// connection so that connections made together do not tick together.
const keepAliveJitter = 5 * time.Second

// sendBatch is the most packets the send loop takes from its queues under
// one lock acquisition.
const sendBatch = 16

// sendLoop writes everything queued for c until ctx ends or a write fails.
// It drains all pending work, then flushes once, so frames queued together
// share TCP writes. When it returns, c is finished and its connection
// closed, which also ends the read loop.
func (c *sclient) sendLoop(ctx context.Context) (err error) {
	defer func() {
		c.nc.Close()
		c.finish()
		c.s.unsubscribeAll(c)
	}()
	period := KeepAlive + rand.N(keepAliveJitter)
	keepAlive := time.NewTimer(period)
	defer keepAlive.Stop()

	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.wake:
		case <-keepAlive.C:
			keepAlive.Reset(period)
			if err := c.writeFrameHeader(FrameKeepAlive, 0); err != nil {
				return err
			}
		}
		frames, err := c.drain()
		if err != nil {
			return err
		}
		if c.bw.Buffered() > 0 {
			if err := c.bw.Flush(); err != nil {
				return err
			}
			c.s.metrics.bufferedWriteFrames.Observe(float64(frames + 1))
		}
	}
}

// drain writes queued frames until the queues are empty and returns how
// many it wrote. It does not flush except when the buffer fills.
func (c *sclient) drain() (frames int, err error) {
	var batch [sendBatch]queuedPacket
	for {
		c.qmu.Lock()
		gone := c.peerGone
		c.peerGone = nil
		events := c.meshEvents
		c.meshEvents = nil
		pong, hasPong := c.pong, c.hasPong
		c.hasPong = false
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
		c.qmu.Unlock()

		if len(gone) == 0 && len(events) == 0 && !hasPong && n == 0 {
			return frames, nil
		}
		for _, g := range gone {
			if err := c.writePeerGone(g.Peer, g.Reason); err != nil {
				c.dropBatch(batch[:n])
				return frames, err
			}
			frames++
		}
		if len(events) > 0 {
			if err := c.writeMeshEvents(events); err != nil {
				c.dropBatch(batch[:n])
				return frames, err
			}
			frames += len(events)
		}
		if hasPong {
			if err := c.writeSmall(FramePong, append(c.scratch[:0], pong[:]...)); err != nil {
				c.dropBatch(batch[:n])
				return frames, err
			}
			c.s.metrics.sentPong.Add(1)
			frames++
		}
		for i := range n {
			if err := c.writePacket(&batch[i]); err != nil {
				c.dropBatch(batch[i+1 : n])
				return frames, err
			}
			frames++
		}
	}
}

// dropBatch counts packets taken from the queue but never written.
func (c *sclient) dropBatch(ps []queuedPacket) {
	for i := range ps {
		c.s.recordDrop(ps[i].buf.b, dropWriteError)
		putPacketBuf(ps[i].buf)
		ps[i] = queuedPacket{}
	}
}

func (c *sclient) setWriteDeadline() {
	d := c.s.WriteTimeout
	if d <= 0 {
		d = defaultWriteTimeout
	}
	c.nc.SetWriteDeadline(time.Now().Add(d))
}

func (c *sclient) writeFrameHeader(t FrameType, n uint32) error {
	c.setWriteDeadline()
	return WriteFrameHeader(c.bw, t, n)
}

func (c *sclient) writeSmall(t FrameType, payload []byte) error {
	c.setWriteDeadline()
	return WriteFrame(c.bw, t, payload)
}

// writePacket writes one RecvPacket frame and returns the buffer to the
// pool, whatever happens.
func (c *sclient) writePacket(p *queuedPacket) error {
	s := c.s
	pkt := p.buf.b
	defer func() {
		putPacketBuf(p.buf)
		*p = queuedPacket{}
	}()
	s.metrics.noteQueueTime(s.monoNow() - p.enqueued)
	if _, ok := c.sentFrom[p.src]; !ok && !p.src.IsZero() {
		if c.sentFrom == nil {
			c.sentFrom = make(map[key.NodePublic]struct{})
		}
		c.sentFrom[p.src] = struct{}{}
		s.subscribePeerGone(p.src, c)
	}
	err := c.writeRecvPacket(p.src, pkt)
	if err != nil {
		s.recordDrop(pkt, dropWriteError)
		return err
	}
	s.metrics.packetsSent.Add(1)
	s.metrics.bytesSent.Add(int64(len(pkt)))
	return nil
}

func (c *sclient) writeRecvPacket(src key.NodePublic, pkt []byte) error {
	c.setWriteDeadline()
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
			err = c.writeSmall(FramePeerPresent, appendPeerPresent(c.scratch[:0], ev.key, ev.ipPort, ev.flags))
		}
		if err != nil {
			return err
		}
	}
	return nil
}
