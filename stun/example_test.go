package stun_test

import (
	"fmt"
	"net/netip"

	"github.com/openderp/openderp/stun"
)

// A client sends Request, the server answers with Response, and the client
// reads its public address back with ParseResponse.
func Example() {
	tx := stun.NewTxID()
	req := stun.Request(tx)

	// Server side: validate, then answer with the address the datagram
	// came from.
	gotTx, err := stun.ParseBindingRequest(req)
	if err != nil {
		fmt.Println("ignored:", err)
		return
	}
	resp := stun.Response(gotTx, netip.MustParseAddrPort("203.0.113.7:41641"))

	// Client side.
	respTx, addr, err := stun.ParseResponse(resp)
	if err != nil || respTx != tx {
		fmt.Println("bad reply:", err)
		return
	}
	fmt.Println("public address:", addr)
	// Output: public address: 203.0.113.7:41641
}
