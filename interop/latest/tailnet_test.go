//go:build !race

package latest

import (
	"context"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/openderp/openderp/derphttp"
	"tailscale.com/envknob"
	"tailscale.com/tailcfg"

	"github.com/openderp/openderp/internal/loopguard"
)

// transferSize is what the bulk transfer carries each way.
const transferSize = 16 << 20

// Two tsnet nodes of the newest reference, homed on our relay, reach each
// other through it only: disco pings both ways and a TCP connection
// carrying transferSize bytes each way, over DERP framed on TLS and, as a
// second case, on WebSocket.
func TestTailnetThroughOurRelay(t *testing.T) {
	for _, ws := range []bool{false, true} {
		t.Run(map[bool]string{false: "tls", true: "websocket"}[ws], func(t *testing.T) {
			if ws {
				requireWebSocketClient(t)
				t.Setenv("TS_DEBUG_DERP_WS_CLIENT", "1")
			}
			guardOutside(t)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			r, _ := startOurRelay(t, "")
			url := startControl(t, derpRegion(startSTUN(t), r))
			ws0 := derphttp.WebSocketAccepts()
			a := startNode(t, ctx, url, "a")
			b := startNode(t, ctx, url, "b")
			checkTailnet(t, ctx, a, b, r)
			if n := derphttp.WebSocketAccepts() - ws0; ws && n < 2 {
				t.Errorf("our relay accepted %d WebSocket connections, want at least 2 (one per node)", n)
			}
		})
	}
}

// guardOutside fails the test if, while it runs, anything tries to reach
// an address off loopback.
func guardOutside(t *testing.T) {
	seen := len(loopguard.Attempts())
	loopguard.Watch(t)
	t.Cleanup(func() {
		if got := loopguard.Attempts(); len(got) > seen {
			t.Errorf("attempts to leave loopback:\n%v", got[seen:])
		}
	})
}

// checkTailnet runs the end-to-end checks between a and b: DERP was
// forced, disco pings both ways go via the relay region, the peer status
// shows no direct path, and a bulk transfer each way arrives intact while
// the relays' byte counters grow by at least as much. The relays are
// those a path crosses; with two, a is on the first and b on the second.
func checkTailnet(t *testing.T, ctx context.Context, a, b *tailNode, relays ...*tailRelay) {
	t.Helper()
	if !envknob.Bool("TS_DEBUG_ALWAYS_USE_DERP") {
		t.Fatal("TS_DEBUG_ALWAYS_USE_DERP is not set in the test process")
	}
	for _, n := range []*tailNode{a, b} {
		if !n.log.sawAlwaysDERP() {
			t.Errorf("node %s's magicsock did not report TS_DEBUG_ALWAYS_USE_DERP", n.name)
		}
	}
	ping(t, ctx, a, b)
	ping(t, ctx, b, a)
	for _, p := range [][2]*tailNode{{a, b}, {b, a}} {
		st, err := p[0].lc.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ps := st.Peer[p[1].key]
		if ps == nil {
			t.Fatalf("%s does not list %s as a peer", p[0].name, p[1].name)
		}
		if ps.Relay != "oderp" || ps.CurAddr != "" {
			t.Errorf("%s sees %s via relay %q, direct address %q; want relay \"oderp\" and no direct address", p[0].name, p[1].name, ps.Relay, ps.CurAddr)
		}
	}

	before := make([]relayCounters, len(relays))
	for i, r := range relays {
		before[i] = r.counters(t)
	}
	ab, ba := transfer(t, ctx, a, b)
	t.Logf("goodput over the tailnet: a→b %.2f MB/s, b→a %.2f MB/s (%d MiB each way)", ab, ba, transferSize>>20)
	for i, r := range relays {
		d := r.counters(t).sub(before[i])
		t.Logf("%s relay during the transfer: %v", r.name, d)
		// Each direction enters the relay network once and leaves it
		// once; every relay on the path sees each direction at least
		// once on one side.
		min := int64(transferSize)
		if len(relays) == 1 {
			min = 2 * transferSize
		}
		if d.bytesReceived < min || d.bytesSent < min {
			t.Errorf("%s relay's byte counters grew by %d received, %d sent; want at least %d each", r.name, d.bytesReceived, d.bytesSent, min)
		}
		if len(relays) > 1 && d.fwdOut == 0 {
			t.Errorf("%s relay forwarded nothing to its mesh peer", r.name)
		}
	}
}

// ping sends disco pings from src to dst until one is answered, and checks
// that it went through DERP region 1 and no direct endpoint.
func ping(t *testing.T, ctx context.Context, src, dst *tailNode) {
	t.Helper()
	var last string
	for range 20 {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		res, err := src.lc.Ping(pctx, dst.ip, tailcfg.PingDisco)
		cancel()
		switch {
		case err != nil:
			last = err.Error()
		case res.Err != "":
			last = res.Err
		default:
			if res.DERPRegionID != 1 || res.Endpoint != "" {
				t.Errorf("disco ping %s→%s answered via region %d, endpoint %q; want region 1 and no endpoint", src.name, dst.name, res.DERPRegionID, res.Endpoint)
			}
			t.Logf("disco ping %s→%s: %.1f ms via DERP region %d (%s)", src.name, dst.name, res.LatencySeconds*1000, res.DERPRegionID, res.DERPRegionCode)
			return
		}
		if ctx.Err() != nil {
			break
		}
	}
	t.Fatalf("disco ping %s→%s never answered: %s", src.name, dst.name, last)
}

// transfer opens a TCP connection from a to b over the tailnet and sends
// transferSize pseudo-random bytes a→b, then b→a, checking each by
// SHA-256. It returns the goodput each way in MB/s.
func transfer(t *testing.T, ctx context.Context, a, b *tailNode) (ab, ba float64) {
	t.Helper()
	ln, err := b.s.Listen("tcp", ":7001")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	ca, err := a.s.Dial(ctx, "tcp", netip.AddrPortFrom(b.ip, 7001).String())
	if err != nil {
		t.Fatalf("dialing b over the tailnet: %v", err)
	}
	defer ca.Close()
	var cb net.Conn
	select {
	case c, ok := <-accepted:
		if !ok {
			t.Fatal("b's listener failed")
		}
		cb = c
	case <-ctx.Done():
		t.Fatal("b never accepted a's connection")
	}
	defer cb.Close()
	dl, _ := ctx.Deadline()
	ca.SetDeadline(dl)
	cb.SetDeadline(dl)
	ab = send(t, ca, cb, 1, "a→b")
	ba = send(t, cb, ca, 2, "b→a")
	return ab, ba
}

// send writes transferSize bytes from a stream seeded with seed to w while
// reading them from r, and returns the goodput in MB/s.
func send(t *testing.T, w, r net.Conn, seed uint64, what string) float64 {
	t.Helper()
	start := time.Now()
	sent := make(chan error, 1)
	var want [sha256.Size]byte
	go func() {
		var s [32]byte
		s[0] = byte(seed)
		src := io.LimitReader(rand.NewChaCha8(s), transferSize)
		h := sha256.New()
		_, err := io.Copy(w, io.TeeReader(src, h))
		copy(want[:], h.Sum(nil))
		sent <- err
	}()
	h := sha256.New()
	n, rerr := io.CopyN(h, r, transferSize)
	elapsed := time.Since(start)
	if rerr != nil {
		w.Close() // unblock the writer
	}
	werr := <-sent
	if rerr != nil {
		t.Fatalf("%s: read %d of %d bytes in %v (%.2f MB/s): %v (writer: %v)", what, n, transferSize, elapsed, float64(n)/1e6/elapsed.Seconds(), rerr, werr)
	}
	if werr != nil {
		t.Fatalf("%s: writing: %v", what, werr)
	}
	if got := h.Sum(nil); string(got) != string(want[:]) {
		t.Fatalf("%s: SHA-256 mismatch", what)
	}
	return float64(transferSize) / 1e6 / elapsed.Seconds()
}
