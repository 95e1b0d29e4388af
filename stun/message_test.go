package stun_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net/netip"
	"testing"

	"github.com/openderp/openderp/stun"
)

// Golden messages produced by the reference implementation (tailscale.com
// v1.76.3) for transaction ID 01 02 … 0c.
var (
	goldenTxID = stun.TxID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}

	goldenRequest = "000100142112a4420102030405060708090a0b0c" +
		"802200087461696c6e6f6465" + "80280004b32c370f"
	goldenResponse4 = "0101000c2112a4420102030405060708090a0b0c" +
		"002000080001a147e112a643"
	goldenResponse6 = "010100182112a4420102030405060708090a0b0c" +
		"002000140002a1470113a9fa1336557c0517253b4d5f6d7b"
	// What the reference sends an IPv4 client seen through a dual-stack
	// socket (see docs/compat.md#stun-ipv4-mapped).
	goldenResponseMapped = "010100182112a4420102030405060708090a0b0c" +
		"002000140002a1472112a442010203040506f8f7c90a090d"
)

func TestRequestGolden(t *testing.T) {
	want := unhex(t, goldenRequest)
	if got := stun.Request(goldenTxID); !bytes.Equal(got, want) {
		t.Fatalf("Request(%v) = %x; want %x", goldenTxID, got, want)
	}
	if len(want) != stun.RequestLen {
		t.Fatalf("golden request is %d bytes; RequestLen = %d", len(want), stun.RequestLen)
	}
	prefix := []byte("xyz")
	got := stun.AppendRequest(prefix, goldenTxID)
	if !bytes.Equal(got[:3], prefix) || !bytes.Equal(got[3:], want) {
		t.Fatalf("AppendRequest(%q, %v) = %x; want prefix then %x", prefix, goldenTxID, got, want)
	}
	tx, err := stun.ParseBindingRequest(want)
	if err != nil || tx != goldenTxID {
		t.Fatalf("ParseBindingRequest(%x) = %v, %v; want %v, nil", want, tx, err, goldenTxID)
	}
}

func TestResponseGolden(t *testing.T) {
	tests := []struct {
		name   string
		addr   netip.AddrPort
		golden string
		parsed netip.AddrPort // what ParseResponse returns
	}{
		{"ipv4", netip.MustParseAddrPort("192.0.2.1:32853"), goldenResponse4, netip.MustParseAddrPort("192.0.2.1:32853")},
		{"ipv6", netip.MustParseAddrPort("[2001:db8:1234:5678:11:2233:4455:6677]:32853"), goldenResponse6,
			netip.MustParseAddrPort("[2001:db8:1234:5678:11:2233:4455:6677]:32853")},
		{"ipv4-mapped", netip.MustParseAddrPort("[::ffff:192.0.2.1]:32853"), goldenResponseMapped,
			netip.MustParseAddrPort("192.0.2.1:32853")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := unhex(t, tt.golden)
			got := stun.Response(goldenTxID, tt.addr)
			if !bytes.Equal(got, want) {
				t.Fatalf("Response(%v, %v) = %x; want %x", goldenTxID, tt.addr, got, want)
			}
			tx, addr, err := stun.ParseResponse(got)
			if err != nil || tx != goldenTxID || addr != tt.parsed {
				t.Fatalf("ParseResponse(%x) = %v, %v, %v; want %v, %v, nil", got, tx, addr, err, goldenTxID, tt.parsed)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	addrs := []string{
		"0.0.0.0:0", "1.2.3.4:1", "255.255.255.255:65535", "100.64.0.1:41641",
		"[::]:0", "[::1]:3478", "[fe80::1]:9", "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
	}
	for i, s := range addrs {
		ap := netip.MustParseAddrPort(s)
		tx := stun.NewTxID()
		if i == 0 {
			tx = stun.TxID{}
		}
		req := stun.Request(tx)
		if got, err := stun.ParseBindingRequest(req); err != nil || got != tx {
			t.Errorf("ParseBindingRequest(Request(%v)) = %v, %v", tx, got, err)
		}
		resp := stun.Response(tx, ap)
		gotTx, gotAddr, err := stun.ParseResponse(resp)
		if err != nil || gotTx != tx || gotAddr != ap {
			t.Errorf("ParseResponse(Response(%v, %v)) = %v, %v, %v", tx, ap, gotTx, gotAddr, err)
		}
	}
}

func TestNewTxIDDistinct(t *testing.T) {
	if a, b := stun.NewTxID(), stun.NewTxID(); a == b {
		t.Fatalf("NewTxID returned %v twice", a)
	}
}

func TestIs(t *testing.T) {
	req := stun.Request(goldenTxID)
	tests := []struct {
		name string
		b    []byte
		want bool
	}{
		{"request", req, true},
		{"header only", req[:stun.HeaderLen], true},
		{"short", req[:stun.HeaderLen-1], false},
		{"empty", nil, false},
		{"top bit", with(req, 0, 0x80), false},
		{"second bit", with(req, 0, 0x40), false},
		{"bad cookie", with(req, 7, 0x43), false},
	}
	for _, tt := range tests {
		if got := stun.Is(tt.b); got != tt.want {
			t.Errorf("Is(%s %x) = %v; want %v", tt.name, tt.b, got, tt.want)
		}
	}
}

// with returns a copy of b with b[i] set to v.
func with(b []byte, i int, v byte) []byte {
	c := append([]byte(nil), b...)
	c[i] = v
	return c
}

// message assembles a STUN message of type typ from attributes given as
// (type, value) pairs, with a correct length field and padding.
func message(typ uint16, tx stun.TxID, attrs ...attr) []byte {
	var body []byte
	for _, a := range attrs {
		body = binary.BigEndian.AppendUint16(body, a.typ)
		body = binary.BigEndian.AppendUint16(body, uint16(len(a.val)))
		body = append(body, a.val...)
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
	}
	b := binary.BigEndian.AppendUint16(nil, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	b = binary.BigEndian.AppendUint32(b, stun.MagicCookie)
	b = append(b, tx[:]...)
	return append(b, body...)
}

type attr struct {
	typ uint16
	val []byte
}

// withFingerprint appends a correct FINGERPRINT to msg, fixing the length.
func withFingerprint(msg []byte) []byte {
	b := append([]byte(nil), msg...)
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)-stun.HeaderLen+8))
	b = append(b, 0x80, 0x28, 0, 4)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[:len(b)-4])^stun.FingerprintXOR)
}

func TestParseBindingRequest(t *testing.T) {
	tx := goldenTxID
	req := stun.Request(tx)
	badFP := with(req, len(req)-1, req[len(req)-1]^1)
	tests := []struct {
		name    string
		b       []byte
		wantErr error
	}{
		{"tailscale", req, nil},
		{"bare header", message(0x0001, tx), nil},
		{"generic with fingerprint", withFingerprint(message(0x0001, tx)), nil},
		{"unknown attributes", message(0x0001, tx, attr{0x8022, []byte("pion")}, attr{0x0024, []byte{1, 2, 3, 4}}), nil},
		{"odd value padded", message(0x0001, tx, attr{0x0006, []byte("abcde")}), nil},
		{"software without fingerprint", req[:32], nil},
		{"empty", nil, stun.ErrNotSTUN},
		{"short", req[:19], stun.ErrNotSTUN},
		{"bad cookie", with(req, 4, 0), stun.ErrNotSTUN},
		{"top bits", with(req, 0, 0xC0), stun.ErrNotSTUN},
		{"response type", message(0x0101, tx), stun.ErrNotBindingRequest},
		{"indication", message(0x0011, tx), stun.ErrNotBindingRequest},
		{"truncated attr header", append(message(0x0001, tx), 0x80, 0x22), stun.ErrMalformedAttrs},
		{"value past end", req[:len(req)-1], stun.ErrMalformedAttrs},
		{"padding past end", message(0x0001, tx, attr{0x0006, []byte("abcde")})[:HeaderLenPlus(9)], stun.ErrMalformedAttrs},
		{"bad fingerprint", badFP, stun.ErrBadFingerprint},
		{"fingerprint wrong size", message(0x0001, tx, attr{0x8028, []byte{1, 2, 3}}), stun.ErrBadFingerprint},
		{"fingerprint not last", append(append([]byte(nil), req...), 0x80, 0x22, 0, 0), stun.ErrFingerprintNotLast},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := stun.ParseBindingRequest(tt.b)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseBindingRequest(%x) error = %v; want %v", tt.b, err, tt.wantErr)
			}
			if err == nil && got != tx {
				t.Fatalf("ParseBindingRequest(%x) = %v; want %v", tt.b, got, tx)
			}
		})
	}
}

// HeaderLenPlus returns the length of a header followed by n bytes.
func HeaderLenPlus(n int) int { return stun.HeaderLen + n }

func TestParseResponse(t *testing.T) {
	tx := goldenTxID
	v4 := netip.MustParseAddrPort("192.0.2.1:32853")
	v6 := netip.MustParseAddrPort("[2001:db8::1]:443")
	xor4 := unhex(t, goldenResponse4)[20:] // XOR-MAPPED-ADDRESS attribute with header
	xorVal := xor4[4:]
	plain4 := []byte{0, 1, 0x80, 0x55, 192, 0, 2, 1}
	plainOther := []byte{0, 1, 0, 80, 10, 0, 0, 1}
	tests := []struct {
		name     string
		b        []byte
		wantTx   stun.TxID
		wantAddr netip.AddrPort
		wantErr  error
	}{
		{"ipv4", stun.Response(tx, v4), tx, v4, nil},
		{"ipv6", stun.Response(tx, v6), tx, v6, nil},
		{"alternate xor type", message(0x0101, tx, attr{0x8020, xorVal}), tx, v4, nil},
		{"mapped fallback", message(0x0101, tx, attr{0x0001, plain4}), tx, v4, nil},
		{"xor wins over mapped", message(0x0101, tx, attr{0x0020, xorVal}, attr{0x0001, plainOther}), tx, v4, nil},
		{"later xor wins", message(0x0101, tx, attr{0x0020, stun.Response(tx, v6)[24:]}, attr{0x0020, xorVal}), tx, v4, nil},
		{"with fingerprint", withFingerprint(stun.Response(tx, v4)), tx, v4, nil},
		{"trailing bytes ignored", append(stun.Response(tx, v4), 1, 2, 3), tx, v4, nil},
		{"unknown attrs skipped", message(0x0101, tx, attr{0x8022, []byte("x")}, attr{0x0020, xorVal}), tx, v4, nil},
		{"empty", nil, stun.TxID{}, netip.AddrPort{}, stun.ErrNotSTUN},
		{"bad cookie", with(stun.Response(tx, v4), 5, 0), stun.TxID{}, netip.AddrPort{}, stun.ErrNotSTUN},
		{"request", stun.Request(tx), tx, netip.AddrPort{}, stun.ErrNotSuccessResponse},
		{"error response", message(0x0111, tx), tx, netip.AddrPort{}, stun.ErrNotSuccessResponse},
		{"length past end", stun.Response(tx, v4)[:31], tx, netip.AddrPort{}, stun.ErrBadLength},
		{"no address", message(0x0101, tx), tx, netip.AddrPort{}, stun.ErrNoMappedAddress},
		{"truncated attr header", append(with(message(0x0101, tx), 3, 2), 0, 0x20), tx, netip.AddrPort{}, stun.ErrMalformedAttrs},
		{"value past length", with(stun.Response(tx, v4), 23, 12), tx, netip.AddrPort{}, stun.ErrMalformedAttrs},
		{"short address", message(0x0101, tx, attr{0x0020, []byte{0, 1, 0}}), tx, netip.AddrPort{}, stun.ErrMalformedAddress},
		{"truncated ipv4", message(0x0101, tx, attr{0x0020, xorVal[:6]}), tx, netip.AddrPort{}, stun.ErrMalformedAddress},
		{"truncated ipv6", message(0x0101, tx, attr{0x0020, stun.Response(tx, v6)[24:40]}), tx, netip.AddrPort{}, stun.ErrMalformedAddress},
		{"bad family", message(0x0101, tx, attr{0x0020, []byte{0, 3, 0, 0, 1, 2, 3, 4}}), tx, netip.AddrPort{}, stun.ErrMalformedAddress},
		{"bad mapped family", message(0x0101, tx, attr{0x0020, xorVal}, attr{0x0001, []byte{0, 9, 0, 0, 1, 2, 3, 4}}), tx, netip.AddrPort{}, stun.ErrMalformedAddress},
		{"bad fingerprint", with(withFingerprint(stun.Response(tx, v4)), 39, 0), tx, netip.AddrPort{}, stun.ErrBadFingerprint},
		{"fingerprint not last", message(0x0101, tx, attr{0x8028, []byte{1, 2, 3, 4}}, attr{0x0020, xorVal}), tx, netip.AddrPort{}, stun.ErrFingerprintNotLast},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotTx, gotAddr, err := stun.ParseResponse(tt.b)
			if !errors.Is(err, tt.wantErr) || gotTx != tt.wantTx || gotAddr != tt.wantAddr {
				t.Fatalf("ParseResponse(%x) = %v, %v, %v; want %v, %v, %v", tt.b, gotTx, gotAddr, err, tt.wantTx, tt.wantAddr, tt.wantErr)
			}
		})
	}
}

func TestParseNoAllocs(t *testing.T) {
	req := stun.Request(goldenTxID)
	resp := stun.Response(goldenTxID, netip.MustParseAddrPort("[2001:db8::1]:443"))
	junk := []byte("GET / HTTP/1.1\r\nHost: example\r\n\r\n")
	buf := make([]byte, 0, 64)
	n := testing.AllocsPerRun(100, func() {
		stun.ParseBindingRequest(req)
		stun.ParseBindingRequest(junk)
		stun.ParseResponse(resp)
		stun.AppendResponse(buf[:0], goldenTxID, netip.MustParseAddrPort("1.2.3.4:5"))
	})
	if n != 0 {
		t.Fatalf("parsing and AppendResponse allocate %v times per run; want 0", n)
	}
}
