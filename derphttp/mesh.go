package derphttp

import (
	"context"
	"sync"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/key"
)

var _ derp.PacketForwarder = (*Client)(nil)

// RunWatchConnectionLoop follows the clients of the server c is connected
// to, as a mesh peer does: it calls add for every client that connects
// there and remove for every one that leaves, until ctx ends. c needs the
// mesh key; the loop turns WatchConnectionChanges on, so c must not have
// been used yet.
//
// When the connection breaks or is replaced, remove is called for every
// peer added so far with reason derp.PeerGoneReasonMeshConnBroke, and the
// loop reconnects after a pause, or, if the server said it was restarting,
// when and for as long as it advised. If the server turns out to be the local
// one (its key is ignoreServerKey), the loop returns at once and for
// good, leaving that connection open.
func (c *Client) RunWatchConnectionLoop(ctx context.Context, ignoreServerKey key.NodePublic, infoLogf derp.Logf, add func(derp.PeerPresentMessage), remove func(derp.PeerGoneMessage)) {
	c.mu.Lock()
	if c.connGen != 0 && !c.WatchConnectionChanges {
		c.mu.Unlock()
		panic("derphttp: RunWatchConnectionLoop on a client already used without WatchConnectionChanges")
	}
	c.WatchConnectionChanges = true
	c.mu.Unlock()
	logf := func(format string, args ...any) {
		if infoLogf != nil {
			infoLogf(format, args...)
		}
	}

	// Stop blocking receives when ctx ends.
	stopClose := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		cc := c.conn
		c.mu.Unlock()
		if cc != nil {
			c.closeForReconnect(cc)
		}
	})
	defer stopClose()

	present := make(map[key.NodePublic]bool)
	clearPresent := func() {
		for k := range present {
			remove(derp.PeerGoneMessage{Peer: k, Reason: derp.PeerGoneReasonMeshConnBroke})
		}
		clear(present)
	}
	defer clearPresent()

	sleep := func() bool {
		t := time.NewTimer(c.watchRetry)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}

	var pl *peerLog // of the current connection
	defer func() {
		if pl != nil {
			pl.stop()
		}
	}()
	lastGen := 0
	for ctx.Err() == nil {
		if err := c.Connect(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			logf("mesh connect: %v", err)
			if !sleep() {
				return
			}
			continue
		}
		if c.ServerPublicKey() == ignoreServerKey {
			logf("detected self-connect; ignoring host")
			return
		}
		if c.OnWatchConnect != nil {
			c.OnWatchConnect()
		}
		if pl != nil {
			pl.stop()
		}
		pl = newPeerLog(logf)
		for ctx.Err() == nil {
			m, gen, err := c.recvDetail(ctx, nil)
			if err != nil {
				pl.stop()
				clearPresent()
				if ctx.Err() != nil {
					return
				}
				logf("recv error: %v", err)
				// After a Restarting frame, Connect waits as advised
				// instead (see restart.go).
				if !c.restartPending() && !sleep() {
					return
				}
				break
			}
			if gen != lastGen {
				lastGen = gen
				clearPresent()
			}
			switch m := m.(type) {
			case derp.PeerPresentMessage:
				add(m)
				present[m.Key] = true
				pl.notePresent(len(present))
			case derp.PeerGoneMessage:
				if m.Reason != derp.PeerGoneReasonDisconnected {
					logf("peer %s gone, reason %d", m.Peer.ShortString(), m.Reason)
				}
				remove(m)
				delete(present, m.Peer)
				pl.noteGone(len(present))
			}
		}
	}
}

// Timing of the watch loop's peer-count log lines.
const (
	floodMax      = 2 * time.Second        // initial PeerPresent flood is over by then
	floodQuiet    = 200 * time.Millisecond // or once PeerPresents pause this long
	peerLogPeriod = 10 * time.Second       // later counts at most this often
)

// peerLog logs "connected; N peers" once the burst of PeerPresents that
// follows a new watch connection seems over, and "N peers" at most every
// peerLogPeriod afterwards.
type peerLog struct {
	logf  func(string, ...any) // set once
	start time.Time            // set once
	mu    sync.Mutex
	n     int         // guarded by mu; peers last reported to us
	done  bool        // guarded by mu; "connected" logged
	last  time.Time   // guarded by mu; time of the last log line
	timer *time.Timer // guarded by mu
}

func newPeerLog(logf func(string, ...any)) *peerLog {
	p := &peerLog{logf: logf, start: time.Now()}
	p.mu.Lock()
	p.timer = time.AfterFunc(floodMax, p.announce)
	p.mu.Unlock()
	return p
}

func (p *peerLog) announce() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.announceLocked()
}

func (p *peerLog) announceLocked() {
	if p.done {
		return
	}
	p.done = true
	p.timer.Stop()
	p.last = time.Now()
	p.logf("connected; %d peers", p.n)
}

func (p *peerLog) notePresent(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n = n
	if !p.done {
		p.timer.Reset(min(floodQuiet, time.Until(p.start.Add(floodMax))))
		return
	}
	p.periodicLocked()
}

func (p *peerLog) noteGone(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n = n
	if !p.done {
		p.announceLocked()
		return
	}
	p.periodicLocked()
}

func (p *peerLog) periodicLocked() {
	if now := time.Now(); now.Sub(p.last) >= peerLogPeriod {
		p.last = now
		p.logf("%d peers", p.n)
	}
}

func (p *peerLog) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = true
	p.timer.Stop()
}
