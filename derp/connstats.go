package derp

import "sync/atomic"

// connStats counts one connection's data packets, for the debug pages.
// Frame overhead and frames other than packets are not counted.
type connStats struct {
	rxPkts  atomic.Int64 // SendPacket (and ForwardPacket) frames read
	rxBytes atomic.Int64 // packet bytes in them
	txPkts  atomic.Int64 // RecvPacket frames written
	txBytes atomic.Int64 // packet bytes in them
	senders atomic.Int64 // distinct source keys written so far
	home    atomic.Bool  // mirrors sclient.preferred for readers elsewhere
}

func (st *connStats) noteRx(n int) {
	st.rxPkts.Add(1)
	st.rxBytes.Add(int64(n))
}
