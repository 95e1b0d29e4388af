package derp

import "time"

// Push-back. When a packet's destination queue is full, the reader that
// brought the packet waits (reading nothing more from its client, so TCP
// slows the sender) until the destination's writer has drained the queue
// to half, instead of dropping the oldest queued packet at once as the
// reference does. A destination whose writer has been blocked in one
// write for Server.PushBackWait, a receiver that does not keep up, is
// marked stalled: packets for it are then dropped without waiting until
// its queues have run empty, so a stuck receiver delays its senders'
// other traffic once per episode, by about PushBackWait. While the writer
// is merely slow to run (the server is busy), readers keep waiting, up to
// maxPushBackWaits periods per packet. See docs/compat.md#push-back.

// defaultPushBackWait is the bound used when Server.PushBackWait is zero.
const defaultPushBackWait = 100 * time.Millisecond

func (s *Server) pushBackWait() time.Duration {
	if s.PushBackWait == 0 {
		return defaultPushBackWait
	}
	return s.PushBackWait
}

// maxPushBackWaits bounds how many PushBackWait periods a reader waits
// for one packet while the destination's writer is not stuck in a write
// (the server is busy rather than the receiver slow).
const maxPushBackWaits = 50

// waitForRoomLocked waits, for at most one PushBackWait period, until c's
// queues have drained to half. It returns with c.qmu held, as on entry;
// the queue may still be full, for instance if others filled it first.
// It reports whether waiting again is worthwhile; when not, it has marked
// c stalled. *periods counts the periods the caller has waited for this
// packet.
func (c *sclient) waitForRoomLocked(from *sclient, periods *int) bool {
	s := c.s
	if *periods >= maxPushBackWaits {
		c.stalled = true
		return false
	}
	*periods++
	if from.wake == nil {
		from.wake = make(chan struct{}, 1)
	}
	select { // a wake-up left over from an earlier wait
	case <-from.wake:
	default:
	}
	c.waiters = append(c.waiters, from)
	s.metrics.pushBackWaits.Add(1)
	c.qmu.Unlock()
	wait := s.pushBackWait()
	woken := from.sleep(wait)
	c.qmu.Lock()
	if woken {
		return true
	}
	for i, w := range c.waiters {
		if w == from {
			c.waiters[i] = c.waiters[len(c.waiters)-1]
			c.waiters[len(c.waiters)-1] = nil
			c.waiters = c.waiters[:len(c.waiters)-1]
			break
		}
	}
	// A writer blocked in one write for a whole period has a receiver
	// that does not keep up: stop waiting for it. Otherwise the writer is
	// merely slow to run, and pushing back is what relieves the server.
	if since := c.writeSince.Load(); since != 0 && s.monoNow()-since >= int64(wait) {
		c.stalled = true
		return false
	}
	return true
}

// sleep waits up to d for a wake-up; it is called by c's read loop only.
func (c *sclient) sleep(d time.Duration) bool {
	c.rs.parked = true // others run meanwhile; see readBurst
	if c.waitTimer == nil {
		c.waitTimer = time.NewTimer(d)
	} else {
		c.waitTimer.Reset(d)
	}
	select {
	case <-c.wake:
		c.waitTimer.Stop()
		return true
	case <-c.waitTimer.C:
		return false
	}
}

// noteDrainedLocked wakes the readers waiting for room once both queues
// are at most half full, and ends a stall once they are empty. qmu must
// be held.
func (c *sclient) noteDrainedLocked() {
	depth := c.s.queueDepth
	if c.packets.len() > depth/2 || c.disco.len() > depth/2 {
		return
	}
	if c.packets.len() == 0 && c.disco.len() == 0 {
		c.stalled = false
	}
	if len(c.waiters) > 0 {
		c.wakeWaitersLocked()
	}
}

func (c *sclient) wakeWaitersLocked() {
	for i, w := range c.waiters {
		select {
		case w.wake <- struct{}{}:
		default:
		}
		c.waiters[i] = nil
	}
	c.waiters = c.waiters[:0]
}

// blockWatch is the writer a connection's buffered writer writes through.
// It sets the write deadline before each write to the connection (once
// per system call, not once per frame) and notes when a write is in
// progress, for waitForRoomLocked.
type blockWatch struct{ c *sclient }

func (w blockWatch) Write(p []byte) (int, error) {
	c := w.c
	if c.writeTimeout > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	}
	c.writeSince.Store(max(c.s.monoNow(), 1))
	n, err := c.nc.Write(p)
	c.writeSince.Store(0)
	return n, err
}
