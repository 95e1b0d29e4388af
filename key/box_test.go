package key

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/nacl/box"
)

// lowOrderPoints are encodings of Curve25519 points of small order (and
// non-canonical encodings of them). X25519 with any of them gives zero.
var lowOrderPoints = map[string]string{
	"u=1":          "0100000000000000000000000000000000000000000000000000000000000000",
	"order 8 (a)":  "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	"order 8 (b)":  "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
	"u=p-1":        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"u=p (0)":      "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"u=p+1 (1)":    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"u=0 high bit": "0000000000000000000000000000000000000000000000000000000000000080",
}

func rfcKeys(t *testing.T) (alice, bob NodePrivate) {
	return NodePrivateFromRaw32(raw32(t, rfcAlicePriv)), NodePrivateFromRaw32(raw32(t, rfcBobPriv))
}

func TestBoxOverhead(t *testing.T) {
	if BoxOverhead != 40 {
		t.Errorf("BoxOverhead = %d; want 40", BoxOverhead)
	}
}

func TestSharedKeySymmetric(t *testing.T) {
	alice, bob := rfcKeys(t)
	ab, err := sharedKey(alice, bob.Public())
	if err != nil {
		t.Fatal(err)
	}
	ba, err := sharedKey(bob, alice.Public())
	if err != nil {
		t.Fatal(err)
	}
	var want [32]byte
	pub, priv := bob.Public().Raw32(), alice.Raw32()
	box.Precompute(&want, &pub, &priv)
	if *ab != *ba || *ab != want {
		t.Errorf("sharedKey: a→b %x, b→a %x; want both %x", *ab, *ba, want)
	}
	// The box key is HSalsa20 of the X25519 secret, never the secret itself.
	if raw := raw32(t, rfcShared); *ab == raw {
		t.Error("sharedKey returned the raw X25519 secret")
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	alice, bob := rfcKeys(t)
	for _, msg := range [][]byte{nil, {}, []byte(`{"version":2}`), bytes.Repeat([]byte{0xa5}, 70000)} {
		sealed, err := alice.SealTo(bob.Public(), msg)
		if err != nil {
			t.Fatalf("SealTo(%d bytes): %v", len(msg), err)
		}
		if len(sealed) != len(msg)+BoxOverhead {
			t.Errorf("SealTo(%d bytes) gave %d bytes; want %d", len(msg), len(sealed), len(msg)+BoxOverhead)
		}
		got, ok := bob.OpenFrom(alice.Public(), sealed)
		if !ok || !bytes.Equal(got, msg) {
			t.Errorf("OpenFrom(SealTo(%d bytes)) = %d bytes, %v; want the message", len(msg), len(got), ok)
		}
		// Layout: nonce, then a standard NaCl box.
		nonce := [24]byte(sealed[:24])
		apub, bpriv := alice.Public().Raw32(), bob.Raw32()
		plain, ok := box.Open(nil, sealed[24:], &nonce, &apub, &bpriv)
		if !ok || !bytes.Equal(plain, msg) {
			t.Errorf("nacl/box.Open of SealTo output failed (%d bytes)", len(msg))
		}
	}
}

func TestOpenFromNaClBox(t *testing.T) {
	alice, bob := rfcKeys(t)
	var nonce [24]byte
	copy(nonce[:], "a fixed nonce for tests!")
	bpub, apriv := bob.Public().Raw32(), alice.Raw32()
	sealed := box.Seal(nonce[:], []byte("hello"), &nonce, &bpub, &apriv)
	got, ok := bob.OpenFrom(alice.Public(), sealed)
	if !ok || string(got) != "hello" {
		t.Errorf("OpenFrom(nacl box) = %q, %v; want hello, true", got, ok)
	}
}

func TestSealFreshNonce(t *testing.T) {
	alice, bob := rfcKeys(t)
	a, _ := alice.SealTo(bob.Public(), []byte("x"))
	b, _ := alice.SealTo(bob.Public(), []byte("x"))
	if bytes.Equal(a[:24], b[:24]) {
		t.Error("two SealTo calls used the same nonce")
	}
}

func TestOpenFromRejects(t *testing.T) {
	alice, bob := rfcKeys(t)
	eve := NewNode()
	msg := []byte("the quick brown fox")
	sealed, err := alice.SealTo(bob.Public(), msg)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		c := bytes.Clone(sealed)
		c[i] ^= 0x01
		return c
	}
	tests := []struct {
		name   string
		opener NodePrivate
		from   NodePublic
		box    []byte
	}{
		{"tampered nonce", bob, alice.Public(), flip(0)},
		{"tampered tag", bob, alice.Public(), flip(24)},
		{"tampered ciphertext", bob, alice.Public(), flip(len(sealed) - 1)},
		{"truncated", bob, alice.Public(), sealed[:len(sealed)-1]},
		{"extended", bob, alice.Public(), append(bytes.Clone(sealed), 0)},
		{"wrong opener", eve, alice.Public(), sealed},
		{"wrong sender", bob, eve.Public(), sealed},
		{"empty", bob, alice.Public(), nil},
		{"nonce only", bob, alice.Public(), sealed[:24]},
		{"one short of overhead", bob, alice.Public(), sealed[:BoxOverhead-1]},
		{"zero private", NodePrivate{}, alice.Public(), sealed},
		{"zero public", bob, NodePublic{}, sealed},
	}
	for _, tc := range tests {
		if got, ok := tc.opener.OpenFrom(tc.from, tc.box); ok || got != nil {
			t.Errorf("%s: OpenFrom = %q, %v; want nil, false", tc.name, got, ok)
		}
	}
	// An empty message seals to exactly BoxOverhead bytes, which must open.
	empty, _ := alice.SealTo(bob.Public(), nil)
	if got, ok := bob.OpenFrom(alice.Public(), empty); !ok || len(got) != 0 {
		t.Errorf("OpenFrom(sealed empty) = %q, %v; want empty, true", got, ok)
	}
}

func TestSealToZeroKeys(t *testing.T) {
	alice, bob := rfcKeys(t)
	for _, tc := range []struct {
		name string
		priv NodePrivate
		pub  NodePublic
	}{
		{"zero private", NodePrivate{}, bob.Public()},
		{"zero public", alice, NodePublic{}},
		{"both zero", NodePrivate{}, NodePublic{}},
	} {
		sealed, err := tc.priv.SealTo(tc.pub, []byte("x"))
		if !errors.Is(err, ErrZeroKey) || sealed != nil {
			t.Errorf("%s: SealTo = %x, %v; want nil, ErrZeroKey", tc.name, sealed, err)
		}
	}
}

func TestLowOrderKeysRejected(t *testing.T) {
	alice, _ := rfcKeys(t)
	// A well-formed box to offer OpenFrom; only the key should make it fail.
	sealed := make([]byte, BoxOverhead+8)
	for name, h := range lowOrderPoints {
		t.Run(name, func(t *testing.T) {
			pub := NodePublicFromRaw32(raw32(t, h))
			got, err := alice.SealTo(pub, []byte("secret"))
			if err == nil || got != nil {
				t.Fatalf("SealTo(low-order key) = %x, %v; want an error", got, err)
			}
			if !strings.Contains(err.Error(), "key: computing shared secret") {
				t.Errorf("SealTo error = %q; want it to say what failed", err)
			}
			if _, ok := alice.OpenFrom(pub, sealed); ok {
				t.Error("OpenFrom with a low-order key succeeded")
			}
		})
	}
}
