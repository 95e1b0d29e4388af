package stunserver_test

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/openderp/openderp/stun"
	"github.com/openderp/openderp/stun/stunserver"
)

// BenchmarkAnswer measures the per-datagram work without a socket.
func BenchmarkAnswer(b *testing.B) {
	s := stunserver.New(nil)
	req := stun.Request(stun.NewTxID())
	src := netip.MustParseAddrPort("[::ffff:203.0.113.7]:41641")
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.Answer(buf[:0], req, src); !ok {
			b.Fatal("request not answered")
		}
	}
}

// BenchmarkLoopbackRoundTrip measures one request and its answer through
// the kernel's loopback, client work included.
func BenchmarkLoopbackRoundTrip(b *testing.B) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- stunserver.New(nil).Serve(ctx, conn) }()
	defer func() {
		cancel()
		<-done
	}()
	c, err := net.DialUDP("udp4", nil, conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := stun.Request(stun.NewTxID())
	buf := make([]byte, 1500)
	if err := c.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		n, err := c.Read(buf)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := stun.ParseResponse(buf[:n]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoopbackPipelined measures server throughput: the client keeps
// a window of requests in flight, so the server can find several datagrams
// queued per wakeup. One op is one request answered.
func BenchmarkLoopbackPipelined(b *testing.B) {
	const window = 32
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- stunserver.New(nil).Serve(ctx, conn) }()
	defer func() {
		cancel()
		<-done
	}()
	c, err := net.DialUDP("udp4", nil, conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := stun.Request(stun.NewTxID())
	buf := make([]byte, 1500)
	b.ReportAllocs()
	for i := 0; i < b.N; i += window {
		n := min(window, b.N-i)
		for range n {
			if _, err := c.Write(req); err != nil {
				b.Fatal(err)
			}
		}
		// A lost datagram shows up as a deadline error, not a hang.
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for range n {
			if _, err := c.Read(buf); err != nil {
				b.Fatal(err)
			}
		}
	}
}
