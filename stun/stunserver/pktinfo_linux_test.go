package stunserver

import (
	"net/netip"
	"testing"
)

func TestParseLocalAddr(t *testing.T) {
	v4 := netip.MustParseAddr("127.0.0.2")
	v6 := netip.MustParseAddr("2001:db8::5")
	both := appendSourceInfo(appendSourceInfo(nil, v6), v4)
	tests := []struct {
		name string
		oob  []byte
		want netip.Addr
	}{
		{"none", nil, netip.Addr{}},
		{"v4", appendSourceInfo(nil, v4), v4},
		{"v6", appendSourceInfo(nil, v6), v6},
		{"v4 preferred", both, v4},
		{"mapped v6 unmapped", appendSourceInfo(nil, netip.MustParseAddr("::ffff:10.0.0.1")), netip.MustParseAddr("10.0.0.1")},
		{"unspecified", appendSourceInfo(nil, netip.IPv4Unspecified()), netip.Addr{}},
		{"multicast", appendSourceInfo(nil, netip.MustParseAddr("ff02::1")), netip.Addr{}},
		{"truncated", appendSourceInfo(nil, v4)[:20], netip.Addr{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseLocalAddr(tt.oob)
			if got != tt.want || ok != tt.want.IsValid() {
				t.Fatalf("parseLocalAddr = %v, %v; want %v", got, ok, tt.want)
			}
		})
	}
}

// FuzzParseLocalAddr checks that any control-message bytes parse without
// panicking, that a returned address is usable for a reply, and that
// encoding it and parsing again gives it back.
func FuzzParseLocalAddr(f *testing.F) {
	f.Add(appendSourceInfo(nil, netip.MustParseAddr("127.0.0.2")))
	f.Add(appendSourceInfo(nil, netip.MustParseAddr("2001:db8::1")))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 8, 0, 0, 0})
	f.Fuzz(func(t *testing.T, oob []byte) {
		a, ok := parseLocalAddr(oob)
		if ok != a.IsValid() {
			t.Fatalf("ok = %v for %v", ok, a)
		}
		if !ok {
			return
		}
		if !usableLocal(a) || a.Is4In6() {
			t.Fatalf("returned unusable %v", a)
		}
		if b, _ := parseLocalAddr(appendSourceInfo(nil, a)); b != a {
			t.Fatalf("round trip %v -> %v", a, b)
		}
	})
}
