package derp

import (
	"math/rand/v2"
	"time"
)

// Keep-alives come from one server-wide schedule instead of a timer per
// connection: a goroutine ticks every keepAliveTick, finds the
// connections whose keep-alive is due (sclient.kaDue) and wakes their
// writers. A connection's first keep-alive goes out KeepAlive plus a
// random jitter below keepAliveJitter after the handshake, and the jitter
// is drawn afresh for each following one (LATEST 4.3). The tick makes a
// keep-alive up to one tick late, far inside the 120 s clients allow.

// keepAliveJitter is the largest random addition to KeepAlive.
const keepAliveJitter = 5 * time.Second

// keepAliveTick is how often the schedule looks for due keep-alives.
const keepAliveTick = time.Second

// keepAlivePeriod returns the wait until a connection's next keep-alive.
func (s *Server) keepAlivePeriod() time.Duration {
	if s.keepAliveForTest > 0 {
		return s.keepAliveForTest
	}
	return KeepAlive + rand.N(keepAliveJitter)
}

// startKeepAlives starts the keep-alive schedule, once; it runs until
// Close.
func (s *Server) startKeepAlives() {
	s.kaOnce.Do(func() {
		tick := keepAliveTick
		if s.keepAliveForTest > 0 {
			tick = max(s.keepAliveForTest/4, time.Millisecond)
		}
		s.background.Add(1)
		go func() {
			defer s.background.Done()
			t := time.NewTicker(tick)
			defer t.Stop()
			var due []*sclient
			for {
				select {
				case <-s.rttStop:
					return
				case <-t.C:
					due = s.sendKeepAlives(due[:0])
				}
			}
		}()
	})
}

// sendKeepAlives queues a keep-alive on every connection whose one is
// due. It collects them under Server.mu into buf, which it returns for
// reuse, and wakes them after releasing it.
func (s *Server) sendKeepAlives(buf []*sclient) []*sclient {
	now := s.monoNow()
	s.mu.Lock()
	for _, set := range s.clients {
		if set.dup == nil {
			if c := set.active; c != nil && c.kaDue.Load() <= now {
				buf = append(buf, c)
			}
			continue
		}
		for c := range set.dup.conns {
			if c.kaDue.Load() <= now {
				buf = append(buf, c)
			}
		}
	}
	s.mu.Unlock()
	for i, c := range buf {
		c.keepAliveDue(now)
		buf[i] = nil
	}
	return buf
}

// keepAliveDue queues a keep-alive for c and schedules the next one.
func (c *sclient) keepAliveDue(now int64) {
	c.kaDue.Store(now + int64(c.s.keepAlivePeriod()))
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.finished || !c.ready {
		return
	}
	c.keepAlive = true
	c.wakeLocked()
}
