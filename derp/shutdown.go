package derp

import (
	"context"
	"time"
)

// shutdownFlushTimeout bounds how long Shutdown waits, once the grace
// period is over, for the packets still queued to be written.
const shutdownFlushTimeout = 2 * time.Second

// Shutdown closes the server gracefully, for a restart. It stops admitting
// connections (Accept closes new ones at once), sends every connected
// client, mesh peers and watchers included, a Restarting frame advising
// it to reconnect after reconnectIn and to keep trying for tryFor, and
// goes on relaying until ctx is done or every connection has ended. It
// then stops queueing packets, waits a short while for the ones already
// queued to be written, and closes the server as Close does.
//
// A grace period is a ctx with a timeout; a ctx that is already done
// skips relaying but not the Restarting frames or the final flush.
// Shutdown returns ErrServerClosed if the server was already closed or
// shutting down, and nil otherwise. Once it has returned, none of the
// server's goroutines is left.
func (s *Server) Shutdown(ctx context.Context, reconnectIn, tryFor time.Duration) error {
	s.mu.Lock()
	if s.closed || s.draining {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.draining = true
	s.drained = make(chan struct{})
	if len(s.conns) == 0 {
		close(s.drained)
	}
	var payload [8]byte
	appendRestarting(payload[:0], reconnectIn, tryFor)
	s.restarting.Store(&payload)
	all := s.allClientsLocked()
	s.mu.Unlock()

	for _, c := range all {
		c.queueRestarting(&payload)
	}

	select {
	case <-ctx.Done():
	case <-s.drained:
	case <-s.closing:
	}

	s.flushQueues()
	return s.Close()
}

// allClientsLocked returns every registered connection. s.mu must be held.
func (s *Server) allClientsLocked() []*sclient {
	var all []*sclient
	for _, set := range s.clients {
		set.forEach(func(c *sclient) { all = append(all, c) })
	}
	return all
}

// noteRegistered sends c the Restarting frame if the server started
// shutting down while c was in its handshake. Shutdown reaches every
// connection registered before it took s.mu; one registered later sees
// s.restarting here.
func (s *Server) noteRegistered(c *sclient) {
	if p := s.restarting.Load(); p != nil {
		c.queueRestarting(p)
	}
}

// noteConnGoneLocked tells a shutdown waiting for every connection to end
// that one has. s.mu must be held, nc already forgotten.
func (s *Server) noteConnGoneLocked() {
	if s.draining && len(s.conns) == 0 && s.drained != nil {
		select {
		case <-s.drained:
		default:
			close(s.drained)
		}
	}
}

// queueRestarting queues a Restarting frame with payload p for c, once.
func (c *sclient) queueRestarting(p *[8]byte) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.finished || c.restartQueued {
		return
	}
	c.restart, c.hasRestart, c.restartQueued = *p, true, true
	c.wakeLocked()
}

// flushQueues stops every connection from taking new packets and waits,
// at most shutdownFlushTimeout, for what is queued to be written.
func (s *Server) flushQueues() {
	s.mu.Lock()
	all := s.allClientsLocked()
	s.mu.Unlock()

	var pending []<-chan struct{}
	for _, c := range all {
		if ch := c.stopQueueing(); ch != nil {
			pending = append(pending, ch)
		}
	}
	if len(pending) == 0 {
		return
	}
	t := time.NewTimer(shutdownFlushTimeout)
	defer t.Stop()
	for _, ch := range pending {
		select {
		case <-ch:
		case <-t.C:
			s.logf.printf("derp: shutdown: gave up waiting for queued packets after %v", shutdownFlushTimeout)
			return
		case <-s.closing:
			return
		}
	}
}

// stopQueueing makes c refuse further packets (they are dropped as if c
// had gone) and returns a channel closed once its writer has written what
// is queued, or nil if nothing is left to write.
func (c *sclient) stopQueueing() <-chan struct{} {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	c.noMore = true
	c.wakeWaitersLocked() // waiting readers drop their packets instead
	// A connection not yet ready has its writer started by startWriting;
	// one that fails first is finished by shutdown, which ends the wait.
	if c.finished || (!c.writing && !c.hasWorkLocked()) {
		return nil
	}
	if c.flushed == nil {
		c.flushed = make(chan struct{})
	}
	return c.flushed
}

// noteWriterIdleLocked is called by a writer that stops, and by shutdown.
// It ends a Shutdown's wait for c's queues. qmu must be held.
func (c *sclient) noteWriterIdleLocked() {
	if c.flushed != nil {
		close(c.flushed)
		c.flushed = nil
	}
}
