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

// TestReplyFromContactedAddress checks LATEST §7.1: a socket bound to the
// wildcard address answers from the address the request was sent to. The
// client, on 127.0.0.1, sends to 127.0.0.2; without pktinfo the kernel
// would answer from 127.0.0.1, its preferred source for that route.
func TestReplyFromContactedAddress(t *testing.T) {
	for _, tt := range []struct{ name, network, bind string }{
		{"ipv4 socket", "udp4", "0.0.0.0:0"},
		{"dual-stack socket", "udp", "[::]:0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ua, err := net.ResolveUDPAddr(tt.network, tt.bind)
			if err != nil {
				t.Fatal(err)
			}
			conn, err := net.ListenUDP(tt.network, ua)
			if err != nil {
				t.Skipf("cannot bind %s: %v", tt.bind, err)
			}
			s := stunserver.New(t.Logf)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Serve(ctx, conn) }()
			defer func() { cancel(); <-done }()
			port := conn.LocalAddr().(*net.UDPAddr).Port

			cl, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			// The first exchange only waits for Serve to have enabled
			// pktinfo: a datagram queued before that carries no
			// destination address.
			for i, dst := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.1"} {
				to := netip.AddrPortFrom(netip.MustParseAddr(dst), uint16(port))
				tx := stun.NewTxID()
				if _, err := cl.WriteToUDPAddrPort(stun.Request(tx), to); err != nil {
					t.Fatal(err)
				}
				cl.SetReadDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 512)
				n, from, err := cl.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatalf("no reply to request sent to %v: %v", to, err)
				}
				gotTx, mapped, err := stun.ParseResponse(buf[:n])
				if err != nil || gotTx != tx {
					t.Fatalf("bad reply %x: %v", buf[:n], err)
				}
				if i == 0 {
					continue
				}
				if from.Addr().Unmap() != to.Addr() {
					t.Errorf("request to %v answered from %v", to, from)
				}
				// LATEST §7.2: an IPv4 client gets an IPv4 answer (32 bytes).
				if !mapped.Addr().Is4() || n != 32 {
					t.Errorf("mapped %v in %d bytes, want IPv4 in 32", mapped, n)
				}
			}
			if m := s.Metrics(); m.NoLocalAddr > 1 {
				t.Errorf("NoLocalAddr = %d", m.NoLocalAddr)
			}
		})
	}
}
