package derp

import (
	"bufio"
	"encoding/json"
	"net"
	"runtime"
	"testing"

	"github.com/openderp/openderp/key"
)

// BenchmarkIdleClientMemory reports what one idle client costs the
// server: heap and stack bytes, and goroutines. The clients are raw
// sockets that complete the handshake by hand and then hold still, so
// nearly everything measured is the server's (including the 4 KiB read
// and write buffers a front end gives each connection, as net/http does).
func BenchmarkIdleClientMemory(b *testing.B) {
	const n = 500
	ts := newTestServer(b)
	ts.s.logf = nil
	ts.s.MaxConnsPerKey = 1 << 20 // every client uses one key
	priv := key.NewNode()
	js, _ := json.Marshal(clientInfo{Version: ProtocolVersion, CanAckPings: true})
	sealed, _ := priv.SealTo(ts.s.PublicKey(), js)
	hello := append([]byte{byte(FrameClientInfo), 0, 0, 0, 0}, appendClientInfo(nil, priv.Public(), sealed)...)
	hello[4] = byte(len(hello) - 5)
	hello[3] = byte((len(hello) - 5) >> 8)

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	connect := func() {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, nc)
		br := bufio.NewReaderSize(nc, 16)
		if _, _, err := ReadFrame(br, 64, make([]byte, 64)); err != nil { // ServerKey
			b.Fatal(err)
		}
		// Everyone uses the same key: the extra connections form one dup
		// set, which costs the same as separate keys to within a map entry.
		nc.Write(hello)
		if _, _, err := ReadFrame(br, 128, make([]byte, 128)); err != nil { // ServerInfo
			b.Fatal(err)
		}
	}
	connect()
	var stack0, stack1 uint64
	_ = stack0
	measure := func() (uint64, int) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		stack0, stack1 = stack1, ms.StackInuse
		return ms.HeapAlloc + ms.StackInuse, runtime.NumGoroutine()
	}
	b.ResetTimer()
	for range b.N {
		mem0, g0 := measure()
		for range n {
			connect()
		}
		mem1, g1 := measure()
		b.ReportMetric(float64(mem1-mem0)/n, "bytes/client")
		b.ReportMetric(float64(g1-g0)/n, "goroutines/client")
		b.ReportMetric(float64(stack1-stack0)/n, "stack-bytes/client")
	}
}
