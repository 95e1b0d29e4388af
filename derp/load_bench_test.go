package derp

import (
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/openderp/openderp/key"
)

// cpuTime returns the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pairLoad is the result of one run of runPairs.
type pairLoad struct {
	sent, delivered, dropped int64
	elapsed, cpu             time.Duration
}

// runPairs relays n packets of size bytes from each of pairs senders to
// its own receiver through ts, all over loopback TCP. With window > 0 each
// sender keeps at most window packets in flight; with window 0 it sends
// flat out and the server drops or pushes back as it must. Clients and
// server share the process, so cpu counts both.
func runPairs(b *testing.B, ts *testServer, pairs, size, n, window int) pairLoad {
	b.Helper()
	type pair struct {
		src, dst *Client
		got      atomic.Int64
		notify   chan struct{}
	}
	ps := make([]*pair, pairs)
	for i := range ps {
		ps[i] = &pair{src: ts.dial(b), dst: ts.dial(b), notify: make(chan struct{}, 1)}
	}
	m := ts.s.metrics
	drop0 := m.packetsDropped.Value()
	var recvWG sync.WaitGroup
	for _, p := range ps {
		recvWG.Add(1)
		go func() {
			defer recvWG.Done()
			var rp ReceivedPacket
			for {
				msg, err := p.dst.RecvInto(&rp)
				if err != nil {
					return
				}
				if msg == &rp {
					p.got.Add(1)
					select {
					case p.notify <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	pkt := make([]byte, size)
	cpu0, t0 := cpuTime(), time.Now()
	var sendWG sync.WaitGroup
	errc := make(chan error, pairs)
	for _, p := range ps {
		sendWG.Add(1)
		go func() {
			defer sendWG.Done()
			dst := p.dst.PublicKey()
			for sent := 0; sent < n; sent++ {
				for window > 0 && int64(sent)-p.got.Load() >= int64(window) {
					<-p.notify
				}
				if err := p.src.Send(dst, pkt); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	sendWG.Wait()
	select {
	case err := <-errc:
		b.Fatal(err)
	default:
	}
	total := int64(pairs * n)
	delivered := func() int64 {
		var d int64
		for _, p := range ps {
			d += p.got.Load()
		}
		return d
	}
	// Every packet is either delivered or counted as dropped; wait for
	// the last of them (bounded: a lost packet fails the benchmark).
	deadline := time.Now().Add(30 * time.Second)
	for delivered()+m.packetsDropped.Value()-drop0 < total {
		if time.Now().After(deadline) {
			b.Fatalf("only %d delivered and %d dropped of %d", delivered(), m.packetsDropped.Value()-drop0, total)
		}
		time.Sleep(time.Millisecond)
	}
	res := pairLoad{
		sent:      total,
		delivered: delivered(),
		dropped:   m.packetsDropped.Value() - drop0,
		elapsed:   time.Since(t0),
		cpu:       cpuTime() - cpu0,
	}
	for _, p := range ps {
		p.dst.Close()
		p.src.Close()
	}
	recvWG.Wait()
	return res
}

func (r pairLoad) report(b *testing.B) {
	b.ReportMetric(float64(r.delivered)/r.elapsed.Seconds(), "delivered/s")
	b.ReportMetric(float64(r.dropped)/float64(r.sent), "drop-frac")
	if r.cpu > 0 {
		b.ReportMetric(float64(r.delivered)/r.cpu.Seconds(), "pkts/cpu-s")
	}
}

// BenchmarkRelayPairs relays between several independent pairs of
// clients, windowed (32 packets in flight per pair) and flat out. One op
// is one packet sent. delivered/s and drop-frac compare the two modes:
// under push-back the flat-out rate stays near the windowed one and
// little is dropped. DERP_BENCH_PUSHBACK (a duration) overrides
// Server.PushBackWait, e.g. -1ns for the reference's drop-at-once.
func BenchmarkRelayPairs(b *testing.B) {
	for _, pairs := range []int{1, 8} {
		for _, size := range []int{100, 1280} {
			for _, window := range []int{32, 0} {
				mode := "flat"
				if window > 0 {
					mode = fmt.Sprintf("w%d", window)
				}
				b.Run(fmt.Sprintf("%dx%dB-%s", pairs, size, mode), func(b *testing.B) {
					ts := newTestServer(b)
					ts.s.logf = nil
					if d, err := time.ParseDuration(os.Getenv("DERP_BENCH_PUSHBACK")); err == nil {
						ts.s.PushBackWait = d
					}
					n := max(b.N/pairs, 1)
					b.SetBytes(int64(size))
					b.ReportAllocs()
					b.ResetTimer()
					r := runPairs(b, ts, pairs, size, n, window)
					b.StopTimer()
					r.report(b)
				})
			}
		}
	}
}

// BenchmarkRelayParallel relays 100-byte packets between 8 pairs, 32 in
// flight each. Run it with -cpu 1,2,4,8: pkts/cpu-s should hold as cores
// grow, which a server-wide lock per packet would prevent.
func BenchmarkRelayParallel(b *testing.B) {
	ts := newTestServer(b)
	ts.s.logf = nil
	const pairs = 8
	n := max(b.N/pairs, 1)
	b.SetBytes(100)
	b.ReportAllocs()
	b.ResetTimer()
	r := runPairs(b, ts, pairs, 100, n, 32)
	b.StopTimer()
	r.report(b)
}

// BenchmarkHandshake measures one client connection from TCP connect to
// close: ServerKey, ClientInfo (sealed once up front, so the client's own
// key agreement is not counted), ServerInfo, registration and
// unregistration.
func BenchmarkHandshake(b *testing.B) {
	ts := newTestServer(b)
	ts.s.logf = nil
	priv := key.NewNode()
	hello := rawHello(b, ts.s.PublicKey(), priv)
	var frame [256]byte
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for range b.N {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			b.Fatal(err)
		}
		if err := readRawFrame(nc, frame[:], FrameServerKey); err != nil {
			b.Fatal(err)
		}
		if _, err := nc.Write(hello); err != nil {
			b.Fatal(err)
		}
		if err := readRawFrame(nc, frame[:], FrameServerInfo); err != nil {
			b.Fatal(err)
		}
		nc.Close()
	}
	waitFor(b, "connections to end", func() bool { return ts.s.metrics.curConns.Value() == 0 })
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// rawHello returns a complete ClientInfo frame from priv to server.
func rawHello(t testing.TB, server key.NodePublic, priv key.NodePrivate) []byte {
	t.Helper()
	js := []byte(`{"version":2,"CanAckPings":true}`)
	sealed, err := priv.SealTo(server, js)
	if err != nil {
		t.Fatal(err)
	}
	payload := appendClientInfo(nil, priv.Public(), sealed)
	return append(appendFrameHeaderForTest(FrameClientInfo, len(payload)), payload...)
}

func appendFrameHeaderForTest(t FrameType, n int) []byte {
	return []byte{byte(t), byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
}

// readRawFrame reads one frame of type want into buf from nc, without
// buffering beyond it.
func readRawFrame(nc net.Conn, buf []byte, want FrameType) error {
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer nc.SetReadDeadline(time.Time{})
	if _, err := readFullRaw(nc, buf[:FrameHeaderLen]); err != nil {
		return err
	}
	t := FrameType(buf[0])
	n := int(buf[1])<<24 | int(buf[2])<<16 | int(buf[3])<<8 | int(buf[4])
	if t != want || n > len(buf) {
		return fmt.Errorf("got frame %v of %d bytes, want %v", t, n, want)
	}
	_, err := readFullRaw(nc, buf[:n])
	return err
}

func readFullRaw(nc net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := nc.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// BenchmarkFastSlowReceiver measures what a stuck receiver costs the other
// destinations of the same sender. The sender alternates packets between
// a fast receiver and a second one, which either reads as fast (the
// baseline) or never reads. One op is one packet delivered to the fast
// receiver; fast-ratio is its rate next to the stuck receiver divided by
// its rate next to the reading one. Push-back must keep it near 1.
func BenchmarkFastSlowReceiver(b *testing.B) {
	ts := newTestServer(b)
	ts.s.logf = nil
	ts.s.WriteTimeout = time.Minute // keep the stuck receiver connected
	pkt := make([]byte, 1280)
	drain := func(c *Client, n int, done chan<- error) {
		var rp ReceivedPacket
		for got := 0; got < n; {
			m, err := c.RecvInto(&rp)
			if err != nil {
				done <- err
				return
			}
			if m == &rp {
				got++
			}
		}
		done <- nil
	}
	run := func(stuck bool) time.Duration {
		src, fast, other := ts.dial(b), ts.dial(b), ts.dial(b)
		defer func() { src.Close(); fast.Close(); other.Close() }()
		done := make(chan error, 2)
		go drain(fast, b.N, done)
		if !stuck {
			go drain(other, b.N, done)
		}
		t0 := time.Now()
		for range b.N {
			if err := src.Send(fast.PublicKey(), pkt); err != nil {
				b.Fatal(err)
			}
			if err := src.Send(other.PublicKey(), pkt); err != nil {
				b.Fatal(err)
			}
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		d := time.Since(t0)
		if !stuck {
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		}
		return d
	}
	b.ResetTimer()
	base := run(false)
	with := run(true)
	b.StopTimer()
	b.ReportMetric(base.Seconds()/with.Seconds(), "fast-ratio")
	b.ReportMetric(float64(b.N)/with.Seconds(), "fast-pkts/s")
}
