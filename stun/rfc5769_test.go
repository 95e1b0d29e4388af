package stun_test

import (
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"

	"github.com/openderp/openderp/stun"
)

// Test vectors from RFC 5769. They carry MESSAGE-INTEGRITY, which this
// package skips; the FINGERPRINT is checked by the parsers.

var rfc5769TxID = stun.TxID{0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae}

// RFC 5769 §2.1, sample request.
const rfc5769Request = `
00 01 00 58  21 12 a4 42  b7 e7 a7 01  bc 34 d6 86  fa 87 df ae
80 22 00 10  53 54 55 4e  20 74 65 73  74 20 63 6c  69 65 6e 74
00 24 00 04  6e 00 01 ff
80 29 00 08  93 2f f9 b1  51 26 3b 36
00 06 00 09  65 76 74 6a  3a 68 36 76  59 20 20 20
00 08 00 14  9a ea a7 0c  bf d8 cb 56  78 1e f2 b5  b2 d3 f2 49  c1 b5 71 a2
80 28 00 04  e5 7a 3b cf`

// RFC 5769 §2.2, sample IPv4 response.
const rfc5769IPv4Response = `
01 01 00 3c  21 12 a4 42  b7 e7 a7 01  bc 34 d6 86  fa 87 df ae
80 22 00 0b  74 65 73 74  20 76 65 63  74 6f 72 20
00 20 00 08  00 01 a1 47  e1 12 a6 43
00 08 00 14  2b 91 f5 99  fd 9e 90 c3  8c 74 89 f9  2a f9 ba 53  f0 6b e7 d7
80 28 00 04  c0 7d 4c 96`

// RFC 5769 §2.3, sample IPv6 response.
const rfc5769IPv6Response = `
01 01 00 48  21 12 a4 42  b7 e7 a7 01  bc 34 d6 86  fa 87 df ae
80 22 00 0b  74 65 73 74  20 76 65 63  74 6f 72 20
00 20 00 14  00 02 a1 47  01 13 a9 fa  a5 d3 f1 79  bc 25 f4 b5  be d2 b9 d9
00 08 00 14  a3 82 95 4e  4b e6 7b f1  17 84 c9 7c  82 92 c2 75  bf e3 ed 41
80 28 00 04  c8 fb 0b 4c`

// unhex decodes hex with any whitespace.
func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		tb.Fatalf("bad hex in test: %v", err)
	}
	return b
}

func TestRFC5769Request(t *testing.T) {
	b := unhex(t, rfc5769Request)
	tx, err := stun.ParseBindingRequest(b)
	if err != nil {
		t.Fatalf("ParseBindingRequest(RFC 5769 §2.1) error: %v", err)
	}
	if tx != rfc5769TxID {
		t.Errorf("ParseBindingRequest(RFC 5769 §2.1) tx = %v; want %v", tx, rfc5769TxID)
	}
}

func TestRFC5769Responses(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want netip.AddrPort
	}{
		{"§2.2 IPv4", rfc5769IPv4Response, netip.MustParseAddrPort("192.0.2.1:32853")},
		{"§2.3 IPv6", rfc5769IPv6Response, netip.MustParseAddrPort("[2001:db8:1234:5678:11:2233:4455:6677]:32853")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := unhex(t, tt.hex)
			tx, addr, err := stun.ParseResponse(b)
			if err != nil {
				t.Fatalf("ParseResponse error: %v", err)
			}
			if tx != rfc5769TxID || addr != tt.want {
				t.Errorf("ParseResponse = %v, %v; want %v, %v", tx, addr, rfc5769TxID, tt.want)
			}

			// A corrupted byte anywhere before the FINGERPRINT must be caught
			// by it, even where nothing else would notice (the SOFTWARE text).
			bad := append([]byte(nil), b...)
			bad[25] ^= 0x01
			if _, _, err := stun.ParseResponse(bad); err != stun.ErrBadFingerprint {
				t.Errorf("ParseResponse(corrupted SOFTWARE) error = %v; want %v", err, stun.ErrBadFingerprint)
			}
		})
	}
}
