package derphttp_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"expvar"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/derpmap"
	"github.com/openderp/openderp/key"
)

// Fault tests: nodes dying and restarting under clients that keep sending
// numbered packets. A packet may be lost in a fault, but none is ever
// duplicated or delivered to a key it was not sent to.

// ledger records numbered packets received by one client: payload is
// the 8-byte sequence number followed by the intended destination key.
type ledger struct {
	self key.NodePublic
	mu   sync.Mutex
	got  map[key.NodePublic]map[uint64]bool // by source
	errs []string
	ch   chan key.NodePublic // sources of packets as they arrive
}

func newLedger(self key.NodePublic) *ledger {
	return &ledger{self: self, got: make(map[key.NodePublic]map[uint64]bool), ch: make(chan key.NodePublic, 4096)}
}

func seqPacket(seq uint64, dst key.NodePublic) []byte {
	return dst.AppendTo(binary.BigEndian.AppendUint64(nil, seq))
}

func (l *ledger) note(src key.NodePublic, data []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(data) != 8+32 {
		l.errs = append(l.errs, fmt.Sprintf("odd packet of %d bytes", len(data)))
		return
	}
	seq := binary.BigEndian.Uint64(data)
	if dst := key.NodePublicFromBytes(data[8:]); dst != l.self {
		l.errs = append(l.errs, fmt.Sprintf("packet for %v delivered to %v", dst.ShortString(), l.self.ShortString()))
	}
	m := l.got[src]
	if m == nil {
		m = make(map[uint64]bool)
		l.got[src] = m
	}
	if m[seq] {
		l.errs = append(l.errs, fmt.Sprintf("duplicate %d from %v", seq, src.ShortString()))
	}
	m[seq] = true
	select {
	case l.ch <- src:
	default:
	}
}

func (l *ledger) check(t *testing.T) (received int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.errs {
		t.Error(e)
	}
	for _, m := range l.got {
		received += len(m)
	}
	return received
}

// meshNode is one relay of a meshed region.
type meshNode struct {
	ts   *testServer
	stop func()
}

// startMeshRegion starts n meshed TLS relays on loopback, each following
// every other's clients as derper does.
func startMeshRegion(t *testing.T, ca *testCA, n int) []*meshNode {
	const meshKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	nodes := make([]*meshNode, n)
	for i := range nodes {
		nodes[i] = &meshNode{ts: newTestServer(t, serverOpts{tls: ca, metaCert: true, meshKey: meshKey})}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var clients []*derphttp.Client
	for i, a := range nodes {
		for j, b := range nodes {
			if i == j {
				continue
			}
			// a follows b's clients.
			m, err := derphttp.NewClient(a.ts.s.PrivateKey(), b.ts.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			m.MeshKey = meshKey
			m.TLSConfig = &tls.Config{RootCAs: ca.pool}
			m.SetWatchRetry(20 * time.Millisecond)
			clients = append(clients, m)
			s := a.ts.s
			wg.Add(1)
			go func() {
				defer wg.Done()
				m.RunWatchConnectionLoop(ctx, s.PublicKey(), nil,
					func(p derp.PeerPresentMessage) { s.AddPacketForwarder(p.Key, m) },
					func(g derp.PeerGoneMessage) { s.RemovePacketForwarder(g.Peer, m) })
			}()
		}
	}
	t.Cleanup(func() {
		cancel()
		for _, m := range clients {
			m.Close()
		}
		wg.Wait()
	})
	for _, nd := range nodes {
		nd.stop = nd.ts.close
	}
	return nodes
}

// regionClient is a client of the region preferring node home, with a
// receive loop feeding its ledger.
type regionClient struct {
	c    *derphttp.Client
	l    *ledger
	next uint64
}

func newRegionClient(t *testing.T, ca *testCA, nodes []*meshNode, home int) *regionClient {
	region := &derpmap.Region{RegionID: 900, RegionCode: "test"}
	for k := range nodes {
		nd := nodes[(home+k)%len(nodes)]
		region.Nodes = append(region.Nodes, &derpmap.Node{Name: "900" + strconv.Itoa(k), RegionID: 900,
			HostName: "derp.test", IPv4: "127.0.0.1", IPv6: "none", DERPPort: port(t, nd.ts)})
	}
	priv := key.NewNode()
	c := derphttp.NewRegionClient(priv, nil, func() *derpmap.Region { return region })
	c.TLSConfig = &tls.Config{RootCAs: ca.pool}
	rc := &regionClient{c: c, l: newLedger(priv.Public())}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := c.Recv()
			if err == derphttp.ErrClientClosed {
				return
			}
			if err != nil {
				continue // reconnects on the next call
			}
			if p, ok := m.(derp.ReceivedPacket); ok {
				rc.l.note(p.Source, p.Data)
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return rc
}

// allPairsRelay has every client send a numbered packet to every other
// until each has heard from all, and returns how long that took, or fails
// after limit.
func allPairsRelay(t *testing.T, cs []*regionClient, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	heard := make([]map[key.NodePublic]bool, len(cs))
	for i := range heard {
		heard[i] = make(map[key.NodePublic]bool)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		complete := true
		for i, r := range cs {
			if len(heard[i]) < len(cs)-1 {
				complete = false
			}
		drain:
			for {
				select {
				case src := <-r.l.ch:
					heard[i][src] = true
				default:
					break drain
				}
			}
		}
		if complete {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("not every pair relayed within %v", limit)
		}
		for i, a := range cs {
			for j, b := range cs {
				if i != j && !heard[j][a.c.SelfPublicKey()] {
					a.next++
					a.c.Send(b.c.SelfPublicKey(), seqPacket(a.next, b.c.SelfPublicKey()))
				}
			}
		}
		<-tick.C
	}
}

// TestMeshNodeLoss runs a three-node meshed region with two clients homed
// on each node, kills one node, and measures how long until every
// remaining pair (the dead node's clients having moved to a survivor)
// relays again. No packet is duplicated or misdelivered throughout.
func TestMeshNodeLoss(t *testing.T) {
	ca := newTestCA(t)
	nodes := startMeshRegion(t, ca, 3)
	var cs []*regionClient
	for home := range nodes {
		for range 2 {
			cs = append(cs, newRegionClient(t, ca, nodes, home))
		}
	}
	before := allPairsRelay(t, cs, 30*time.Second)
	t.Logf("all %d pairs relaying %v after start", len(cs)*(len(cs)-1), before.Round(time.Millisecond))

	nodes[2].stop()
	after := allPairsRelay(t, cs, 30*time.Second)
	t.Logf("node 3 of 3 killed: all pairs relaying again after %v", after.Round(time.Millisecond))
	total := 0
	for _, r := range cs {
		total += r.l.check(t)
	}
	sent := uint64(0)
	for _, r := range cs {
		sent += r.next
	}
	t.Logf("%d numbered packets sent, %d received exactly once, none duplicated or misdelivered", sent, total)
}

// TestRelayRestart restarts a relay on the same address under its clients:
// they reconnect and relay again, within a measured time.
func TestRelayRestart(t *testing.T) {
	ca := newTestCA(t)
	nodes := startMeshRegion(t, ca, 1)
	addr := nodes[0].ts.addr
	priv := nodes[0].ts.s.PrivateKey()
	cs := []*regionClient{newRegionClient(t, ca, nodes, 0), newRegionClient(t, ca, nodes, 0)}
	allPairsRelay(t, cs, 30*time.Second)
	nodes[0].stop()
	start := time.Now()
	newTestServer(t, serverOpts{tls: ca, metaCert: true, addr: addr, priv: priv})
	allPairsRelay(t, cs, 30*time.Second)
	t.Logf("relay restarted on %s: clients relaying again %v after the restart", addr, time.Since(start).Round(time.Millisecond))
	for _, r := range cs {
		r.l.check(t)
	}
}

// TestWriteStallTimeout has a receiver stop reading while packets pour
// in: the server's writes to it stall, the write timeout cuts it off, the
// lost packets are counted as drops, and another pair is unaffected.
func TestWriteStallTimeout(t *testing.T) {
	ts := newTestServer(t, serverOpts{})
	ts.s.WriteTimeout = 200 * time.Millisecond
	probes := newProbePair(t, ts.url, nil)
	stalled, err := derphttp.NewClient(key.NewNode(), ts.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	waitServerInfo(t, stalled) // and never read again
	sender := newClient(t, ts, nil)
	waitServerInfo(t, sender)
	pkt := make([]byte, 60000)
	vars := ts.s.ExpVar().(*expvar.Map)
	cur := func() string { return vars.Get("gauge_current_connections").String() }
	for i := 0; cur() != "3" && i < 20000; i++ {
		sender.Send(stalled.SelfPublicKey(), pkt)
		if i%500 == 0 {
			probes.exchange(t)
		}
	}
	waitFor(t, "the stalled receiver cut off", func() bool { return cur() == "3" })
	drops := vars.Get("packets_dropped").String()
	t.Logf("stalled receiver disconnected by the write timeout; %s packets dropped and counted", drops)
	if drops == "0" {
		t.Error("no drops counted")
	}
	probes.exchange(t)
}
