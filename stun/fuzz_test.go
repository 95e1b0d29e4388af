package stun_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/openderp/openderp/stun"
)

// FuzzParse feeds arbitrary datagrams to both parsers. Invariants: no
// panic; whatever parses is a STUN message whose transaction ID the parser
// returned; re-encoding the parsed values gives a message that parses back
// to them; and canonical messages re-encode to the very same bytes.
func FuzzParse(f *testing.F) {
	tx := goldenTxID
	for _, s := range []string{goldenRequest, goldenResponse4, goldenResponse6, goldenResponseMapped,
		rfc5769Request, rfc5769IPv4Response, rfc5769IPv6Response} {
		f.Add(unhex(f, s))
	}
	f.Add(message(0x0001, tx))
	f.Add(withFingerprint(message(0x0001, tx, attr{0x0006, []byte("abcde")})))
	f.Add(message(0x0101, tx, attr{0x0001, []byte{0, 1, 0x80, 0x55, 192, 0, 2, 1}}))
	f.Add(message(0x0101, tx, attr{0x8020, unhex(f, goldenResponse6)[24:]}))
	f.Add([]byte("not stun at all, just some text long enough"))

	f.Fuzz(func(t *testing.T, b []byte) {
		if rtx, err := stun.ParseBindingRequest(b); err == nil {
			checkRequest(t, b, rtx)
		}
		tx, addr, err := stun.ParseResponse(b)
		if err == nil {
			checkResponse(t, b, tx, addr)
		} else if err != stun.ErrNotSTUN && tx != stun.TxID(b[8:20]) {
			t.Fatalf("ParseResponse(%x) error %v with tx %v; want the message's tx", b, err, tx)
		}
	})
}

func checkRequest(t *testing.T, b []byte, tx stun.TxID) {
	if !stun.Is(b) || tx != stun.TxID(b[8:20]) {
		t.Fatalf("ParseBindingRequest(%x) accepted with tx %v", b, tx)
	}
	req := stun.Request(tx)
	if got, err := stun.ParseBindingRequest(req); err != nil || got != tx {
		t.Fatalf("ParseBindingRequest(Request(%v)) = %v, %v", tx, got, err)
	}
	// A validated Tailscale-shaped request is exactly what Request builds:
	// the FINGERPRINT pins every other byte.
	if len(b) == stun.RequestLen && bytes.Equal(b[2:4], req[2:4]) && bytes.Equal(b[20:36], req[20:36]) &&
		!bytes.Equal(b, req) {
		t.Fatalf("ParseBindingRequest(%x) accepted; Request(%v) = %x", b, tx, req)
	}
}

func checkResponse(t *testing.T, b []byte, tx stun.TxID, addr netip.AddrPort) {
	if !stun.Is(b) || tx != stun.TxID(b[8:20]) || !addr.IsValid() || addr.Addr().Is4In6() {
		t.Fatalf("ParseResponse(%x) = %v, %v", b, tx, addr)
	}
	resp := stun.Response(tx, addr)
	gotTx, gotAddr, err := stun.ParseResponse(resp)
	if err != nil || gotTx != tx || gotAddr != addr {
		t.Fatalf("ParseResponse(Response(%v, %v)) = %v, %v, %v", tx, addr, gotTx, gotAddr, err)
	}
	// A message holding exactly one XOR-MAPPED-ADDRESS of the family
	// Response would choose is byte-identical to what Response builds.
	msg := b[:stun.HeaderLen+int(binary.BigEndian.Uint16(b[2:4]))]
	if len(msg) == len(resp) && bytes.Equal(msg[20:25], resp[20:25]) && !bytes.Equal(msg, resp) {
		t.Fatalf("ParseResponse(%x) = %v, %v; Response re-encodes as %x", b, tx, addr, resp)
	}
}
