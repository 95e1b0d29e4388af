package key

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// RFC 7748 §6.1 test vectors.
const (
	rfcAlicePriv = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
	rfcAlicePub  = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
	rfcBobPriv   = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
	rfcBobPub    = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
	rfcShared    = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
)

func raw32(tb testing.TB, s string) [32]byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		tb.Fatalf("bad 32-byte hex %q: %v", s, err)
	}
	return [32]byte(b)
}

func isClamped(k [32]byte) bool {
	return k[0]&7 == 0 && k[31]&0x80 == 0 && k[31]&0x40 != 0
}

func TestNewNodeClamped(t *testing.T) {
	seen := make(map[[32]byte]bool)
	for range 64 {
		k := NewNode()
		raw := k.Raw32()
		if !isClamped(raw) {
			t.Fatalf("NewNode() = %x; not clamped", raw)
		}
		if k.IsZero() {
			t.Fatal("NewNode() returned the zero key")
		}
		if seen[raw] {
			t.Fatalf("NewNode() repeated key %x", raw)
		}
		seen[raw] = true
	}
}

func TestClamp(t *testing.T) {
	var all [32]byte
	for i := range all {
		all[i] = 0xff
	}
	clamp(&all)
	if all[0] != 0xf8 || all[31] != 0x7f {
		t.Errorf("clamp(ff…ff) = %x…%x; want f8…7f", all[0], all[31])
	}
	var zero [32]byte
	clamp(&zero)
	if zero[0] != 0 || zero[31] != 0x40 {
		t.Errorf("clamp(00…00) = %x…%x; want 00…40", zero[0], zero[31])
	}
	for i := 1; i < 31; i++ {
		if all[i] != 0xff || zero[i] != 0 {
			t.Fatalf("clamp changed middle byte %d", i)
		}
	}
}

func TestNodePublicRFC7748(t *testing.T) {
	for _, tc := range []struct{ name, priv, pub string }{
		{"alice", rfcAlicePriv, rfcAlicePub},
		{"bob", rfcBobPriv, rfcBobPub},
	} {
		t.Run(tc.name, func(t *testing.T) {
			priv := NodePrivateFromRaw32(raw32(t, tc.priv))
			got := priv.Public()
			if want := NodePublicFromRaw32(raw32(t, tc.pub)); got != want {
				t.Errorf("Public() = %v; want %v", got, want)
			}
			if got.UntypedHexString() != tc.pub {
				t.Errorf("UntypedHexString() = %s; want %s", got.UntypedHexString(), tc.pub)
			}
		})
	}
}

func TestNodePublicOfZero(t *testing.T) {
	if got := (NodePrivate{}).Public(); !got.IsZero() {
		t.Errorf("zero private key Public() = %v; want zero", got)
	}
}

func TestNodePrivateRaw32RoundTrip(t *testing.T) {
	raw := raw32(t, rfcAlicePriv)
	if got := NodePrivateFromRaw32(raw).Raw32(); got != raw {
		t.Errorf("Raw32() = %x; want %x (must not clamp)", got, raw)
	}
}

func TestNodePrivateEqual(t *testing.T) {
	a := NodePrivateFromRaw32(raw32(t, rfcAlicePriv))
	first, last := a.Raw32(), a.Raw32()
	first[0] ^= 1
	last[31] ^= 0x80
	tests := []struct {
		name string
		x, y NodePrivate
		want bool
	}{
		{"same", a, NodePrivateFromRaw32(a.Raw32()), true},
		{"zero zero", NodePrivate{}, NodePrivate{}, true},
		{"first byte differs", a, NodePrivateFromRaw32(first), false},
		{"last byte differs", a, NodePrivateFromRaw32(last), false},
		{"key vs zero", a, NodePrivate{}, false},
	}
	for _, tc := range tests {
		if got := tc.x.Equal(tc.y); got != tc.want {
			t.Errorf("%s: Equal = %v; want %v", tc.name, got, tc.want)
		}
		if got := tc.y.Equal(tc.x); got != tc.want {
			t.Errorf("%s: reversed Equal = %v; want %v", tc.name, got, tc.want)
		}
	}
}

func TestIsZero(t *testing.T) {
	if !(NodePrivate{}).IsZero() || !(NodePublic{}).IsZero() || !(DiscoPrivate{}).IsZero() || !(DiscoPublic{}).IsZero() {
		t.Error("zero values do not report IsZero")
	}
	var one [32]byte
	one[31] = 1
	if NodePrivateFromRaw32(one).IsZero() || NodePublicFromRaw32(one).IsZero() || DiscoPublicFromRaw32(one).IsZero() {
		t.Error("key with last byte 1 reports IsZero")
	}
	if NewDisco().IsZero() {
		t.Error("NewDisco() reports IsZero")
	}
}

func TestNodePublicBytes(t *testing.T) {
	raw := raw32(t, rfcBobPub)
	long := append(raw[:], 0xaa, 0xbb)
	k := NodePublicFromBytes(long)
	if k.Raw32() != raw {
		t.Errorf("NodePublicFromBytes(%x) = %x; want %x", long, k.Raw32(), raw)
	}
	prefix := []byte{1, 2, 3}
	got := k.AppendTo(prefix)
	if want := append([]byte{1, 2, 3}, raw[:]...); !bytes.Equal(got, want) {
		t.Errorf("AppendTo = %x; want %x", got, want)
	}
	if !bytes.Equal(prefix, []byte{1, 2, 3}) {
		t.Errorf("AppendTo changed the prefix: %x", prefix)
	}
}

func TestNodePublicFromBytesShortPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NodePublicFromBytes(31 bytes) did not panic")
		}
	}()
	NodePublicFromBytes(make([]byte, 31))
}

func TestNodePublicShortString(t *testing.T) {
	tests := []struct {
		pub  NodePublic
		want string
	}{
		{NodePublicFromRaw32(raw32(t, rfcAlicePub)), "[hSDwC]"},
		{NodePublicFromRaw32(raw32(t, rfcBobPub)), "[3p7bf]"},
		{NodePublicFromRaw32([32]byte{0xff, 0xff, 0xff, 0xff}), "[/////]"},
		{NodePublic{}, ""},
	}
	for _, tc := range tests {
		if got := tc.pub.ShortString(); got != tc.want {
			t.Errorf("%x.ShortString() = %q; want %q", tc.pub.Raw32(), got, tc.want)
		}
	}
}

func TestNodePublicComparable(t *testing.T) {
	a := NodePublicFromRaw32(raw32(t, rfcAlicePub))
	m := map[NodePublic]int{a: 1}
	if m[NodePrivateFromRaw32(raw32(t, rfcAlicePriv)).Public()] != 1 {
		t.Error("derived public key is not == to the same raw key")
	}
}
