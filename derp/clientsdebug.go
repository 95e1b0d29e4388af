package derp

import (
	"net/netip"
	"time"

	"github.com/openderp/openderp/key"
)

// ConnSnapshot describes one client connection at one moment, for debug
// pages such as derper's /debug/clients/.
type ConnSnapshot struct {
	ConnNum     int64          // accept order, from 1
	Key         key.NodePublic // the client's key
	RemoteAddr  netip.AddrPort // the zero value if unknown
	ConnectedAt time.Time      // end of the handshake

	Active   bool // receives the key's packets
	Dup      bool // the key has two or more connections
	Disabled bool // disabled by the duplicate-connection policy
	Home     bool // the client said this server is its home (NotePreferred)
	MeshPeer bool // presented the mesh key
	NotIdeal bool // see ConnOptions.NotIdeal
	Prober   bool // declared IsProber

	Version int    // ClientInfo version
	AppName string // ClientInfo AppName; "" if none

	RxPackets, RxBytes int64 // data packets (and their bytes) read from the client
	TxPackets, TxBytes int64 // data packets (and their bytes) written to the client

	// Senders is the number of distinct keys whose packets have been
	// written to the connection. It is 0 unless TS_DERP_SENDER_CARDINALITY
	// is true. Unlike the reference's HyperLogLog estimate, it is exact.
	Senders int64
}

// ConnSnapshots returns a snapshot of every client connection, in no
// particular order. The counters are read while the connections keep
// running, so they are consistent per connection only roughly.
func (s *Server) ConnSnapshots() []ConnSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ConnSnapshot, 0, len(s.clients))
	for _, set := range s.clients {
		set.forEach(func(c *sclient) {
			out = append(out, c.snapshot(set.active == c))
		})
	}
	return out
}

func (c *sclient) snapshot(active bool) ConnSnapshot {
	st := &c.stats
	cs := ConnSnapshot{
		ConnNum:     c.connNum,
		Key:         c.key,
		RemoteAddr:  c.ipPort,
		ConnectedAt: c.connected,
		Active:      active,
		Dup:         c.isDup.Load(),
		Disabled:    false, // no policy disables a connection; see docs/compat.md#dup-history
		Home:        st.home.Load(),
		MeshPeer:    c.canMesh,
		NotIdeal:    c.notIdeal,
		Prober:      c.info.IsProber,
		Version:     c.info.Version,
		AppName:     c.info.AppName,
		RxPackets:   st.rxPkts.Load(),
		RxBytes:     st.rxBytes.Load(),
		TxPackets:   st.txPkts.Load(),
		TxBytes:     st.txBytes.Load(),
	}
	if c.s.env.senderCardinality {
		cs.Senders = st.senders.Load()
	}
	return cs
}
