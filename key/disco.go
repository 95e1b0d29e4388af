package key

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"

	"golang.org/x/crypto/curve25519"
)

// DiscoPrivate is a private key for peer-to-peer discovery messages. DERP
// never looks inside those messages; the type exists so that tools and tests
// can make realistic ones.
type DiscoPrivate struct {
	k [32]byte
}

// NewDisco returns a new clamped disco private key from crypto/rand.
func NewDisco() DiscoPrivate {
	var k DiscoPrivate
	rand.Read(k.k[:])
	clamp(&k.k)
	return k
}

// IsZero reports whether k is the zero value.
func (k DiscoPrivate) IsZero() bool { return k.Equal(DiscoPrivate{}) }

// Equal reports whether k and other are the same key, in constant time.
func (k DiscoPrivate) Equal(other DiscoPrivate) bool {
	return subtle.ConstantTimeCompare(k.k[:], other.k[:]) == 1
}

// Public returns the public key of k; the zero key yields the zero key.
func (k DiscoPrivate) Public() DiscoPublic {
	if k.IsZero() {
		return DiscoPublic{}
	}
	out, err := curve25519.X25519(k.k[:], curve25519.Basepoint)
	if err != nil {
		panic("key: X25519 with the base point failed: " + err.Error())
	}
	return DiscoPublic{k: [32]byte(out)}
}

// DiscoPublic is the public half of a disco key.
type DiscoPublic struct {
	k [32]byte
}

// DiscoPublicFromRaw32 returns the disco key whose raw bytes are raw.
func DiscoPublicFromRaw32(raw [32]byte) DiscoPublic { return DiscoPublic{k: raw} }

// IsZero reports whether k is the zero value.
func (k DiscoPublic) IsZero() bool { return k == DiscoPublic{} }

// Raw32 returns the raw bytes of k.
func (k DiscoPublic) Raw32() [32]byte { return k.k }

// AppendTo appends the 32 raw bytes of k to b.
func (k DiscoPublic) AppendTo(b []byte) []byte { return append(b, k.k[:]...) }

// String returns "discokey:" and 64 lowercase hex digits.
func (k DiscoPublic) String() string { return string(appendHex(nil, discoPublicPrefix, &k.k)) }

// ShortString returns "d:" and the hex of the first 8 bytes, or "" for the
// zero key.
func (k DiscoPublic) ShortString() string {
	if k.IsZero() {
		return ""
	}
	return "d:" + hex.EncodeToString(k.k[:8])
}

// AppendText implements encoding.TextAppender.
func (k DiscoPublic) AppendText(b []byte) ([]byte, error) {
	return appendHex(b, discoPublicPrefix, &k.k), nil
}

// MarshalText implements encoding.TextMarshaler with the "discokey:" form.
func (k DiscoPublic) MarshalText() ([]byte, error) { return k.AppendText(nil) }

// UnmarshalText implements encoding.TextUnmarshaler for the "discokey:" form.
func (k *DiscoPublic) UnmarshalText(text []byte) error {
	return parseHex(&k.k, text, discoPublicPrefix)
}
