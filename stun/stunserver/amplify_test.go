package stunserver_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/openderp/openderp/stun"
	"github.com/openderp/openderp/stun/stunserver"
)

// bareRequest is the shortest valid binding request: a 20-byte header.
func bareRequest(tx stun.TxID) []byte {
	b := []byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42}
	return append(b, tx[:]...)
}

// TestAmplificationBounded is the regression test for STUN reflection:
// a source sending bare 20-byte requests gets at most the burst of excess
// response bytes, the rest is refused and counted, while Tailscale's
// 40-byte requests from IPv4 and other sources keep being answered.
func TestAmplificationBounded(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		req       func(stun.TxID) []byte
		wantLimit bool
	}{
		{"bare v4", "192.0.2.1:1000", bareRequest, true},
		{"bare v6", "[2001:db8::1]:1000", bareRequest, true},
		{"tailscale v4", "192.0.2.2:1000", stun.Request, false},
		{"tailscale v4-mapped", "[::ffff:192.0.2.3]:1000", stun.Request, false},
	}
	const n = 5000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := stunserver.New(nil)
			src := netip.MustParseAddrPort(tt.src)
			sentBytes, answeredBytes, answered := 0, 0, 0
			buf := make([]byte, 0, 64)
			for range n {
				req := tt.req(stun.NewTxID())
				sentBytes += len(req)
				out, ok := s.Answer(buf[:0], req, src)
				if ok {
					answered++
					answeredBytes += len(out)
				}
			}
			m := s.Metrics()
			if int(m.AmpLimited) != n-answered {
				t.Errorf("AmpLimited = %d, want %d", m.AmpLimited, n-answered)
			}
			excess := answeredBytes - sentBytes*answered/n
			t.Logf("%s: %d of %d answered, excess bytes %d", tt.name, answered, n, excess)
			if !tt.wantLimit {
				if answered != n {
					t.Fatalf("answered %d of %d", answered, n)
				}
				return
			}
			if answered == n {
				t.Fatalf("all %d bare requests answered", n)
			}
			if excess > stunserver.DefaultAmplificationBurst+stunserver.DefaultAmplificationRate {
				t.Fatalf("excess %d bytes exceeds burst %d", excess, stunserver.DefaultAmplificationBurst)
			}
			// Another source is unaffected.
			other := netip.MustParseAddrPort("198.51.100.7:1")
			if _, ok := s.Answer(buf[:0], bareRequest(stun.NewTxID()), other); !ok {
				t.Fatalf("other source refused")
			}
		})
	}
}

func TestAmplificationLimitOff(t *testing.T) {
	s := stunserver.New(nil)
	s.SetAmplificationLimit(0, 0)
	src := netip.MustParseAddrPort("192.0.2.1:1000")
	for range 2000 {
		if _, ok := s.Answer(nil, bareRequest(stun.NewTxID()), src); !ok {
			t.Fatal("refused with the limit off")
		}
	}
}

// FuzzAmplificationBudget drives the limiter with arbitrary sources and
// request sizes and checks its invariant: within the run, no source is
// answered more excess bytes than the burst plus what the rate earns.
func FuzzAmplificationBudget(f *testing.F) {
	f.Add([]byte{1, 20, 2, 20, 1, 20, 1, 40})
	f.Fuzz(func(t *testing.T, ops []byte) {
		s := stunserver.New(nil)
		const rate, burst = 100, 200
		s.SetAmplificationLimit(rate, burst)
		start := time.Now()
		excess := map[netip.Addr]int{}
		buf := make([]byte, 0, 64)
		for i := 0; i+1 < len(ops); i += 2 {
			src := netip.AddrFrom4([4]byte{192, 0, 2, ops[i] % 4})
			req := bareRequest(stun.NewTxID())
			// Pad with an unknown attribute to vary the request size.
			if pad := int(ops[i+1]) % 40 &^ 3; pad >= 4 {
				req[3] = byte(pad)
				req = append(req, 0x80, 0x99, 0, byte(pad-4))
				req = append(req, make([]byte, pad-4)...)
			}
			out, ok := s.Answer(buf[:0], req, netip.AddrPortFrom(src, 9))
			if ok {
				excess[src] += max(0, len(out)-len(req))
			}
		}
		allowed := burst + int(time.Since(start).Seconds()*rate) + 1
		for src, e := range excess {
			if e > allowed {
				t.Fatalf("%v got %d excess bytes, allowed %d", src, e, allowed)
			}
		}
	})
}
