package derphttp

import (
	"context"
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
// loop reconnects after a pause. If the server turns out to be the local
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
		for ctx.Err() == nil {
			m, gen, err := c.recvDetail(ctx, nil)
			if err != nil {
				clearPresent()
				if ctx.Err() != nil {
					return
				}
				logf("recv error: %v", err)
				if !sleep() {
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
			case derp.PeerGoneMessage:
				if m.Reason != derp.PeerGoneReasonDisconnected {
					logf("peer %s gone, reason %d", m.Peer.ShortString(), m.Reason)
				}
				remove(m)
				delete(present, m.Peer)
			}
		}
	}
}
