package derp

import (
	"testing"
)

// BenchmarkRelay measures client-to-client relaying through a server over
// loopback TCP: one op is one packet sent by one client and received by
// the other. Steady state allocates nothing.
func BenchmarkRelay(b *testing.B) {
	for _, size := range []int{100, 1280, 65535} {
		b.Run(sizeName(size), func(b *testing.B) { benchRelay(b, size) })
	}
}

func sizeName(n int) string {
	switch n {
	case 100:
		return "100B"
	case 1280:
		return "1280B"
	default:
		return "65535B"
	}
}

func benchRelay(b *testing.B, size int) {
	ts := newTestServer(b)
	ts.s.logf = nil
	a, c := ts.dial(b), ts.dial(b)
	dst := c.PublicKey()
	pkt := make([]byte, size)
	const window = 24 // below the queue depth, so nothing is dropped

	recvd := make(chan int, 1)
	var p ReceivedPacket
	go func() {
		n := 0
		for n < b.N {
			m, err := c.RecvInto(&p)
			if err != nil {
				break
			}
			if m == &p {
				n++
				select {
				case recvd <- n:
				default:
				}
			}
		}
		recvd <- -1
	}()

	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	got := 0
	for sent := 0; sent < b.N; sent++ {
		for sent-got >= window {
			got = <-recvd
			if got < 0 {
				b.Fatal("receiver failed")
			}
		}
		if err := a.Send(dst, pkt); err != nil {
			b.Fatal(err)
		}
	}
	for got < b.N && got >= 0 {
		got = <-recvd
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
	b.ReportMetric(float64(b.N)/(cpuTime()-cpu0).Seconds(), "pkts/cpu-s")
	c.Close()
}
