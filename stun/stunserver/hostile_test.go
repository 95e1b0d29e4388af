package stunserver_test

import (
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/openderp/openderp/stun"
	"github.com/openderp/openderp/stun/stunserver"
)

// TestHostileRandomDatagrams is the STUN case of the hostile-input suite:
// random datagrams of every size, near-miss STUN headers and a flood of
// bare binding requests arrive from another address, in bursts, while an
// honest client keeps exchanging requests. Every datagram is counted
// (not_stun for junk; answered or amplification-limited for valid
// requests), the honest client is always answered, and memory and
// goroutines stay flat. 5,000 datagrams by default, 50,000 with
// OPENDERP_HEAVY_TESTS=1 (make hostile).
func TestHostileRandomDatagrams(t *testing.T) {
	total := 5000
	if v, _ := strconv.ParseBool(os.Getenv("OPENDERP_HEAVY_TESTS")); v {
		total = 50000
	}
	s, addr := startServer(t, "udp4")
	honest := dial(t, addr)
	attacker, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Skipf("no second loopback address: %v", err)
	}
	defer attacker.Close()

	honestExchange := func() {
		t.Helper()
		tx := stun.NewTxID()
		if got, _ := exchange(t, honest, stun.Request(tx)); got != tx {
			t.Fatalf("honest client got tx %v, want %v", got, tx)
		}
	}
	honestExchange()
	mem0, g0 := memUse()

	rng := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 65000)
	var want stunserver.Metrics // the counts the datagrams must produce
	want.Success, want.IPv4 = 1, 1
	honestN := 1
	attackerValid := uint64(0)
	// Bursts stay well inside the socket's receive buffer (a big
	// datagram goes alone), and each is waited for, so the kernel drops
	// nothing and the counts are exact.
	for sent := 0; sent < total; {
		burst := 16
		if rng.IntN(50) == 0 {
			burst = 1
		}
		for range burst {
			pkt := hostileDatagram(rng, big, burst == 1)
			if _, err := attacker.WriteToUDPAddrPort(pkt, addr); err != nil {
				t.Fatalf("sending: %v", err)
			}
			if _, err := stun.ParseBindingRequest(pkt); err == nil {
				attackerValid++
				want.IPv4++
			} else {
				want.NotSTUN++
			}
			sent++
		}
		m := settledMetrics(s, func(m stunserver.Metrics) bool {
			return m.NotSTUN == want.NotSTUN && m.IPv4 == want.IPv4 && m.Success+m.AmpLimited+m.WriteErrors == want.IPv4
		})
		if m.NotSTUN != want.NotSTUN || m.IPv4 != want.IPv4 {
			t.Fatalf("after %d datagrams: not_stun %d, ipv4 %d; want %d, %d", sent, m.NotSTUN, m.IPv4, want.NotSTUN, want.IPv4)
		}
		if sent%1000 < burst {
			honestExchange()
			honestN++
			want.IPv4++
		}
	}
	honestExchange()
	honestN++
	want.IPv4++

	m := settledMetrics(s, func(m stunserver.Metrics) bool { return m.Success+m.AmpLimited == want.IPv4 })
	mem1, g1 := memUse()
	t.Logf("%d hostile datagrams (%d valid bare requests), %d honest exchanges: metrics %+v; memory %+d KiB, goroutines %+d",
		total, attackerValid, honestN, m, (int64(mem1)-int64(mem0))/1024, g1-g0)
	if m.ReadErrors != 0 || m.WriteErrors != 0 {
		t.Errorf("read errors %d, write errors %d", m.ReadErrors, m.WriteErrors)
	}
	if m.Success+m.AmpLimited != want.IPv4 {
		t.Errorf("answered %d + limited %d, want %d valid requests", m.Success, m.AmpLimited, want.IPv4)
	}
	// The bare requests cost 12 bytes of budget each: the default burst
	// (4800) pays for 400, so a flood of more must have been limited.
	if attackerValid > 600 && m.AmpLimited == 0 {
		t.Errorf("%d bare requests from one address, none limited", attackerValid)
	}
	if grow := int64(mem1) - int64(mem0); grow > 1<<20 {
		t.Errorf("memory grew by %d KiB", grow/1024)
	}
	if g1 > g0 {
		t.Errorf("goroutines grew by %d", g1-g0)
	}
}

// hostileDatagram returns one datagram of the attack: mostly random bytes
// of random length, also near-miss STUN messages and bare binding
// requests; with huge, a datagram of up to 65,000 random bytes.
func hostileDatagram(rng *rand.Rand, big []byte, huge bool) []byte {
	if huge {
		b := big[:1+rng.IntN(len(big))]
		fillRandom(rng, b)
		return b
	}
	tx := stun.TxID{}
	fillRandom(rng, tx[:])
	bare := append([]byte{0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42}, tx[:]...)
	switch rng.IntN(8) {
	case 0: // a bare binding request: valid, answered with 12 more bytes
		return bare
	case 1: // wrong magic cookie
		bare[4] ^= byte(1 + rng.IntN(255))
		return bare
	case 2: // truncated header
		return bare[:rng.IntN(len(bare))]
	case 3: // a binding response, not a request
		bare[1] = 0x01
		bare[0] = 0x01
		return bare
	case 4: // a length field that lies
		bare[3] = byte(4 + 4*rng.IntN(60))
		return append(bare, make([]byte, rng.IntN(8))...)
	default: // random bytes
		b := make([]byte, rng.IntN(1400))
		fillRandom(rng, b)
		return b
	}
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

// memUse returns the bytes of heap and stacks in use after a collection,
// and the number of goroutines.
func memUse() (uint64, int) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse, runtime.NumGoroutine()
}
