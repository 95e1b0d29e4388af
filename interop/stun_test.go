package interop

import (
	"net/netip"
	"testing"

	ourstun "github.com/openderp/openderp/stun"
	tsstun "tailscale.com/net/stun"
)

func TestSTUNBothWays(t *testing.T) {
	addrs := []netip.AddrPort{
		netip.MustParseAddrPort("192.0.2.1:32853"),
		netip.MustParseAddrPort("[2001:db8::1]:41641"),
	}
	for range 10 {
		// Their request parsed by ours; our response parsed by theirs.
		ttx := tsstun.NewTxID()
		tx, err := ourstun.ParseBindingRequest(tsstun.Request(ttx))
		if err != nil || tx != ourstun.TxID(ttx) {
			t.Fatalf("our parser on their request: %v", err)
		}
		// Our request parsed by theirs; their response parsed by ours.
		otx := ourstun.NewTxID()
		ttx2, err := tsstun.ParseBindingRequest(ourstun.Request(otx))
		if err != nil || ttx2 != tsstun.TxID(otx) {
			t.Fatalf("their parser on our request: %v", err)
		}
		if string(ourstun.Request(otx)) != string(tsstun.Request(tsstun.TxID(otx))) {
			t.Fatal("requests differ byte for byte")
		}
		for _, a := range addrs {
			gotTx, gotAddr, err := tsstun.ParseResponse(ourstun.Response(tx, a))
			if err != nil || gotTx != ttx || gotAddr != a {
				t.Fatalf("their parser on our response for %v: %v %v", a, gotAddr, err)
			}
			otx3, oaddr, err := ourstun.ParseResponse(tsstun.Response(ttx, a))
			if err != nil || otx3 != tx || oaddr != a {
				t.Fatalf("our parser on their response for %v: %v %v", a, oaddr, err)
			}
			if string(ourstun.Response(tx, a)) != string(tsstun.Response(ttx, a)) {
				t.Fatalf("responses for %v differ byte for byte", a)
			}
		}
	}
}
