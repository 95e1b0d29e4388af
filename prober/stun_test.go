package prober_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/openderp/openderp/prober"
	"github.com/openderp/openderp/stun"
)

// fakeSTUN answers each datagram on a loopback socket with reply(request)
// (nothing if it returns nil) until the test ends, and returns its
// address.
func fakeSTUN(t *testing.T, network, addr string, reply func(tx stun.TxID, from netip.AddrPort) []byte) netip.AddrPort {
	pc, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Skipf("no %s loopback: %v", network, err)
	}
	conn := pc.(*net.UDPConn)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			tx, err := stun.ParseBindingRequest(buf[:n])
			if err != nil {
				continue
			}
			if b := reply(tx, from); b != nil {
				conn.WriteToUDPAddrPort(b, from)
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestSTUNProbe(t *testing.T) {
	var retries int
	tests := []struct {
		name    string
		network string
		addr    string
		reply   func(tx stun.TxID, from netip.AddrPort) []byte
		wantErr string
	}{
		{"ipv4", "udp4", "127.0.0.1:0", stun.Response, ""},
		{"ipv6", "udp6", "[::1]:0", stun.Response, ""},
		{"wrong transaction", "udp4", "127.0.0.1:0", func(_ stun.TxID, from netip.AddrPort) []byte {
			return stun.Response(stun.NewTxID(), from)
		}, "has transaction ID"},
		{"garbage", "udp4", "127.0.0.1:0", func(stun.TxID, netip.AddrPort) []byte {
			return []byte("not stun")
		}, "parsing STUN response"},
		{"answers the retry", "udp4", "127.0.0.1:0", func(tx stun.TxID, from netip.AddrPort) []byte {
			if retries++; retries == 1 {
				return nil // the probe resends after its 2s read timeout
			}
			return stun.Response(tx, from)
		}, ""},
		{"silent", "udp4", "127.0.0.1:0", func(stun.TxID, netip.AddrPort) []byte {
			return nil
		}, "timeout reading from 127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := fakeSTUN(t, tt.network, tt.addr, tt.reply)
			timeout := 300 * time.Millisecond
			if strings.Contains(tt.name, "retry") {
				timeout = 5 * time.Second
			}
			ctx, cancel := context.WithTimeout(t.Context(), timeout)
			defer cancel()
			start := time.Now()
			err := prober.ProbeSTUN(ctx, dst)
			t.Logf("probe took %v", time.Since(start))
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("probe = %v; want success", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("probe = %v; want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
