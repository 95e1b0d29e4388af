package derphttp_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/key"
)

// BenchmarkIdleClientMemory reports what one idle client costs behind
// the HTTP handler: heap plus stack bytes and goroutines per client, over
// plain HTTP and TLS. The clients are raw connections that upgrade and
// complete the handshake by hand and then hold still. Client and server
// share the process, so over TLS the client's own TLS state is counted
// too (a few KiB); the plain figure is nearly all server.
func BenchmarkIdleClientMemory(b *testing.B) {
	ca := newTestCA(b)
	for _, bc := range []struct {
		name string
		o    serverOpts
	}{
		{"http", serverOpts{noRecord: true}},
		{"tls", serverOpts{tls: ca, noRecord: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const n = 300
			ts := newTestServer(b, bc.o)
			ts.s.MaxConnsPerKey = 1 << 20 // every client uses one key
			priv := key.NewNode()
			hello := rawHello(b, ts.s.PublicKey(), priv)
			var conns []net.Conn
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			connect := func() {
				var nc net.Conn
				var err error
				if bc.o.tls != nil {
					nc, err = tls.Dial("tcp", ts.addr, &tls.Config{RootCAs: ca.pool, ServerName: "derp.test"})
				} else {
					nc, err = net.Dial("tcp", ts.addr)
				}
				if err != nil {
					b.Fatal(err)
				}
				conns = append(conns, nc)
				nc.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := nc.Write([]byte("GET /derp HTTP/1.1\r\nHost: derp.test\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n\r\n")); err != nil {
					b.Fatal(err)
				}
				br := bufio.NewReaderSize(nc, 512)
				var head []byte
				for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
					line, err := br.ReadSlice('\n')
					if err != nil {
						b.Fatal(err)
					}
					head = append(head, line...)
				}
				if !bytes.HasPrefix(head, []byte("HTTP/1.1 101")) {
					b.Fatalf("upgrade reply: %q", head)
				}
				if _, _, err := derp.ReadFrame(br, 64, make([]byte, 64)); err != nil { // ServerKey
					b.Fatal(err)
				}
				nc.Write(hello)
				if _, _, err := derp.ReadFrame(br, 128, make([]byte, 128)); err != nil { // ServerInfo
					b.Fatal(err)
				}
				nc.SetDeadline(time.Time{})
			}
			connect()
			measure := func() (uint64, uint64, int) {
				runtime.GC()
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				return ms.HeapAlloc, ms.StackInuse, runtime.NumGoroutine()
			}
			b.ResetTimer()
			for range b.N {
				h0, s0, g0 := measure()
				for range n {
					connect()
				}
				h1, s1, g1 := measure()
				b.ReportMetric(float64(h1+s1-h0-s0)/n, "bytes/client")
				b.ReportMetric(float64(s1-s0)/n, "stack-bytes/client")
				b.ReportMetric(float64(g1-g0)/n, "goroutines/client")
			}
		})
	}
}

// rawHello returns a complete ClientInfo frame from priv to server.
func rawHello(t testing.TB, server key.NodePublic, priv key.NodePrivate) []byte {
	t.Helper()
	sealed, err := priv.SealTo(server, []byte(`{"version":2,"CanAckPings":true}`))
	if err != nil {
		t.Fatal(err)
	}
	payload := append(priv.Public().AppendTo(nil), sealed...)
	n := len(payload)
	return append([]byte{byte(derp.FrameClientInfo), byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, payload...)
}
