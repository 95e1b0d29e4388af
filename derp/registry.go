package derp

import (
	"errors"
	"log/slog"
	"sync/atomic"

	"github.com/openderp/openderp/key"
)

// clientSet is the set of connections of one key. Usually there is one;
// when a client connects again before its old connection is gone, or two
// machines share a key, there are several (a dup set) and the one that
// last sent anything receives the traffic.
type clientSet struct {
	active *sclient // receives packets; nil when no connection should. Set with setActive.
	dup    *dupSet  // nil unless there are two or more connections

	// route mirrors active for readers that look it up without Server.mu
	// (see routeCache); it is nil once the set has left Server.clients.
	route atomic.Pointer[sclient]
}

// setActive makes c the receiving connection; Server.mu must be held.
func (cs *clientSet) setActive(c *sclient) {
	cs.active = c
	cs.route.Store(c)
}

// dupSet tracks the connections of a key that has more than one.
type dupSet struct {
	conns map[*sclient]struct{}
	last  *sclient
	// head and tail link the connections by most recent activity, oldest
	// first, each at most once, through sclient.dupPrev and dupNext. The
	// reference keeps every change of speaker in a slice, so two
	// connections taking turns grow its list without bound, and moving or
	// removing a connection costs time in proportion to the list; this
	// list gives the same answer to "who spoke last among those left" in
	// bounded memory and O(1) per change. See docs/compat.md#dup-history.
	head, tail *sclient
}

// touch moves c to the end of the activity list.
func (d *dupSet) touch(c *sclient) {
	oldTail := d.tail
	d.unlinkKeepTail(c)
	c.dupPrev, c.dupNext, c.inRecent = d.tail, nil, true
	if d.tail != nil {
		d.tail.dupNext = c
	} else {
		d.head = c
	}
	d.tail = c
	d.noteTail(oldTail)
}

// remove takes c off the activity list.
func (d *dupSet) remove(c *sclient) {
	oldTail := d.tail
	d.unlinkKeepTail(c)
	d.noteTail(oldTail)
}

func (d *dupSet) unlinkKeepTail(c *sclient) {
	if !c.inRecent {
		return
	}
	if c.dupPrev != nil {
		c.dupPrev.dupNext = c.dupNext
	} else {
		d.head = c.dupNext
	}
	if c.dupNext != nil {
		c.dupNext.dupPrev = c.dupPrev
	} else {
		d.tail = c.dupPrev
	}
	c.dupPrev, c.dupNext, c.inRecent = nil, nil, false
}

// noteTail keeps sclient.lastSpoke in step with the end of the list.
func (d *dupSet) noteTail(oldTail *sclient) {
	if oldTail == d.tail {
		return
	}
	if oldTail != nil {
		oldTail.lastSpoke.Store(false)
	}
	if d.tail != nil {
		d.tail.lastSpoke.Store(true)
	}
}

// dissolve empties the activity list when the set is down to one
// connection.
func (d *dupSet) dissolve() {
	for c := d.head; c != nil; {
		next := c.dupNext
		c.dupPrev, c.dupNext, c.inRecent = nil, nil, false
		c.lastSpoke.Store(false)
		c = next
	}
	d.head, d.tail = nil, nil
}

// DefaultMaxConnsPerKey is the default of Server.MaxConnsPerKey.
const DefaultMaxConnsPerKey = 100

// ErrTooManyConnections is why a connection is refused after its
// handshake when its key already has Server.MaxConnsPerKey connections.
var ErrTooManyConnections = errors.New("derp: too many connections for one key")

func (s *Server) maxConnsPerKey() int {
	if s.MaxConnsPerKey <= 0 {
		return DefaultMaxConnsPerKey
	}
	return s.MaxConnsPerKey
}

func (cs *clientSet) len() int {
	if cs.dup != nil {
		return len(cs.dup.conns)
	}
	if cs.active != nil {
		return 1
	}
	return 0
}

// forEach calls f for every connection of the set.
func (cs *clientSet) forEach(f func(*sclient)) {
	if cs.dup != nil {
		for c := range cs.dup.conns {
			f(c)
		}
		return
	}
	if cs.active != nil {
		f(cs.active)
	}
}

// registerClient makes c routable and announces it to watchers. It fails
// if the server is closed or c's key has too many connections.
func (s *Server) registerClient(c *sclient) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrServerClosed
	}
	m := s.metrics
	set := s.clients[c.key]
	if set != nil && set.len() >= s.maxConnsPerKey() {
		return ErrTooManyConnections
	}
	if set == nil {
		set = new(clientSet)
		s.clients[c.key] = set
	}
	if was := set.active; was != nil {
		was.isDup.Store(true)
		c.isDup.Store(true)
		if set.dup == nil {
			set.dup = &dupSet{conns: map[*sclient]struct{}{c: {}, was: {}}, last: c}
			set.dup.touch(was)
			m.dupClientKeys.Add(1)
			m.dupClientConns.Add(2)
			m.dupClientConnsTotal.Add(1)
		}
	}
	if set.dup != nil && set.dup.last != c {
		set.dup.conns[c] = struct{}{}
		set.dup.last = c
		set.dup.touch(c)
		c.isDup.Store(true)
		m.dupClientConns.Add(1)
		m.dupClientConnsTotal.Add(1)
	}
	set.setActive(c)
	if _, ok := s.clientsMesh[c.key]; !ok {
		s.clientsMesh[c.key] = nil
	}
	if c.ipPort.IsValid() {
		s.keyOfAddr[c.ipPort] = c.key
	}
	m.curConns.Add(1)
	if c.notIdeal {
		m.curNotIdealConns.Add(1)
	}
	c.set = set
	s.broadcastLocked(meshEvent{key: c.key, ipPort: c.ipPort, flags: c.flags, app: c.info.AppName})
	return nil
}

// unregisterClient removes c, picking another active connection for its
// key or, for the last one, telling watchers and past correspondents that
// the key is gone.
func (s *Server) unregisterClient(c *sclient) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.metrics
	set := s.clients[c.key]
	switch {
	case set == nil:
	case set.dup == nil:
		set.setActive(nil)
		delete(s.clients, c.key)
		if fwd, ok := s.clientsMesh[c.key]; ok && fwd == nil {
			delete(s.clientsMesh, c.key)
			s.peerGoneFromRegionLocked(c.key)
		}
		s.broadcastLocked(meshEvent{key: c.key, gone: true})
	default:
		d := set.dup
		delete(d.conns, c)
		d.remove(c)
		if d.last == c {
			d.last = d.tail
		}
		m.dupClientConns.Add(-1)
		if len(d.conns) == 1 {
			var rest *sclient
			for x := range d.conns {
				rest = x
			}
			d.dissolve()
			set.dup = nil
			m.dupClientConns.Add(-1)
			m.dupClientKeys.Add(-1)
			rest.isDup.Store(false)
			set.setActive(rest)
		} else if d.last != nil {
			set.setActive(d.last)
		} else {
			set.setActive(nil)
		}
	}
	if c.isWatcher {
		delete(s.watchers, c)
		c.isWatcher = false
		m.watchers.Add(-1)
	}
	if c.ipPort.IsValid() && s.keyOfAddr[c.ipPort] == c.key {
		delete(s.keyOfAddr, c.ipPort)
	}
	m.curConns.Add(-1)
	if c.notIdeal {
		m.curNotIdealConns.Add(-1)
	}
	if c.preferred {
		m.curHomeConns.Add(-1)
	}
}

// noteActive makes c, which just sent a frame, the receiving connection of
// its dup set ("last writer is active").
func (s *Server) noteActive(c *sclient) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.clients[c.key]
	if set == nil || set.dup == nil {
		return
	}
	if _, ok := set.dup.conns[c]; !ok {
		return
	}
	set.dup.last = c
	set.setActive(c)
	if set.dup.tail != c {
		set.dup.touch(c)
	}
}

// isLastSpeaker reports, without the server lock, whether c is already
// its dup set's receiving connection and last speaker, so that noteActive
// would change nothing.
func (c *sclient) isLastSpeaker() bool {
	return c.lastSpoke.Load() && c.set != nil && c.set.route.Load() == c
}

// broadcastLocked queues ev for every watcher. s.mu must be held.
func (s *Server) broadcastLocked(ev meshEvent) {
	for w := range s.watchers {
		w.addMeshEvent(ev)
	}
}

// addWatcher subscribes c to connection changes after sending it the
// current state.
func (s *Server) addWatcher(c *sclient) {
	if c.key == s.pub {
		// The server connected to itself through its own mesh list.
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, set := range s.clients {
		if a := set.active; a != nil {
			c.addMeshEvent(meshEvent{key: k, ipPort: a.ipPort, flags: a.flags, app: a.info.AppName})
		}
	}
	if !c.isWatcher {
		c.isWatcher = true
		s.watchers[c] = struct{}{}
		s.metrics.watchers.Add(1)
	}
}

// closePeer closes every local connection of k, on behalf of a mesh peer.
func (s *Server) closePeer(k key.NodePublic) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.clients[k]
	if set == nil || set.len() == 0 {
		s.log(slog.LevelInfo, connLog{key: k}, "derp: close peer %v: no such client", k)
		return
	}
	n := set.len()
	if n > 1 {
		s.log(slog.LevelInfo, connLog{key: k}, "derp: closing %d connections of %v on request of a mesh peer", n, k)
	} else {
		s.log(slog.LevelInfo, connLog{key: k}, "derp: closing connection of %v on request of a mesh peer", k)
	}
	set.forEach(func(c *sclient) {
		// Closing a TLS connection may block on its close_notify write;
		// do not hold the server lock meanwhile.
		s.background.Add(1)
		go func() {
			defer s.background.Done()
			c.nc.Close()
		}()
	})
}

// subscribePeerGone records that c has received a packet from src, so c
// hears when src leaves the region.
func (s *Server) subscribePeerGone(src key.NodePublic, c *sclient) {
	s.mu.Lock()
	defer s.mu.Unlock()
	subs := s.goneSubs[src]
	if subs == nil {
		subs = make(map[*sclient]struct{})
		s.goneSubs[src] = subs
	}
	subs[c] = struct{}{}
}

// unsubscribeAll drops c's PeerGone subscriptions; its send loop calls it
// on the way out.
func (s *Server) unsubscribeAll(c *sclient) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for src := range c.sentFrom {
		if subs := s.goneSubs[src]; subs != nil {
			delete(subs, c)
			if len(subs) == 0 {
				delete(s.goneSubs, src)
			}
		}
	}
}

// peerGoneFromRegionLocked tells everyone who received from k that k is
// gone. s.mu must be held.
func (s *Server) peerGoneFromRegionLocked(k key.NodePublic) {
	for c := range s.goneSubs[k] {
		c.requestPeerGone(k, PeerGoneReasonDisconnected)
	}
	delete(s.goneSubs, k)
}

// routePacket delivers a packet from src to dst on behalf of c, the
// connection it arrived on, taking ownership of pb. A packet that came
// from a mesh peer (forwarded) is never forwarded again.
func (s *Server) routePacket(c *sclient, src, dst key.NodePublic, pb *packetBuf, forwarded bool) {
	if dstConn := c.routes.lookup(dst); dstConn != nil {
		dstConn.enqueue(src, pb, c)
		return
	}
	s.mu.Lock()
	var dstConn *sclient
	var fwd PacketForwarder
	n := 0
	if set := s.clients[dst]; set != nil {
		dstConn, n = set.active, set.len()
		c.routes.remember(dst, set)
	}
	if dstConn == nil && n == 0 && !forwarded {
		fwd = s.clientsMesh[dst]
		if m, ok := fwd.(*multiForwarder); ok {
			fwd = m.preferred
		}
	}
	s.mu.Unlock()

	switch {
	case dstConn != nil:
		dstConn.enqueue(src, pb, c)
	case fwd != nil:
		s.metrics.packetsForwardedOut.Add(1)
		// The forwarder copies what it needs before returning.
		if err := fwd.ForwardPacket(src, dst, pb.b); err != nil {
			if lvl, ok := s.debugLevel(c.debug); ok {
				s.log(lvl, c.logAttrs(err), "%sforwarding to %v via %v: %v", c.logPrefix, dst.ShortString(), fwd, err)
			}
		}
		putPacketBuf(pb)
	default:
		reason := dropUnknownDest
		if forwarded {
			reason = dropUnknownDestOnFwd
		}
		if n > 1 {
			reason = dropDupClient
		}
		s.recordDrop(src, dst, pb.b, reason)
		if reason != dropDupClient && looksLikeDisco(pb.b) && c.allowNotHere() {
			c.requestPeerGone(dst, PeerGoneReasonNotHere)
		}
		putPacketBuf(pb)
	}
}
