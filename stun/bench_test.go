package stun_test

import (
	"net/netip"
	"testing"

	"github.com/openderp/openderp/stun"
)

func BenchmarkParseBindingRequest(b *testing.B) {
	req := stun.Request(stun.NewTxID())
	b.ReportAllocs()
	b.SetBytes(int64(len(req)))
	for b.Loop() {
		if _, err := stun.ParseBindingRequest(req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendResponse(b *testing.B) {
	for _, s := range []string{"203.0.113.7:41641", "[2001:db8::7]:41641"} {
		addr := netip.MustParseAddrPort(s)
		name := "ipv4"
		if addr.Addr().Is6() {
			name = "ipv6"
		}
		b.Run(name, func(b *testing.B) {
			tx := stun.NewTxID()
			buf := make([]byte, 0, 64)
			b.ReportAllocs()
			for b.Loop() {
				buf = stun.AppendResponse(buf[:0], tx, addr)
			}
		})
	}
}

func BenchmarkParseResponse(b *testing.B) {
	resp := stun.Response(stun.NewTxID(), netip.MustParseAddrPort("[2001:db8::7]:41641"))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := stun.ParseResponse(resp); err != nil {
			b.Fatal(err)
		}
	}
}
