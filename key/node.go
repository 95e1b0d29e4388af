package key

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"

	"golang.org/x/crypto/curve25519"
)

// NodePrivate is a node's private key. It identifies DERP clients and
// servers alike. The zero value is not a usable key.
type NodePrivate struct {
	k [32]byte
}

// NewNode returns a new private key drawn from crypto/rand and clamped for
// X25519.
func NewNode() NodePrivate {
	var k NodePrivate
	rand.Read(k.k[:]) // crypto/rand.Read never returns an error.
	clamp(&k.k)
	return k
}

// NodePrivateFromRaw32 returns the private key whose raw bytes are raw. The
// bytes are used as given (not clamped).
func NodePrivateFromRaw32(raw [32]byte) NodePrivate { return NodePrivate{k: raw} }

// clamp applies the X25519 clamping rules to a fresh scalar.
func clamp(k *[32]byte) {
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
}

// IsZero reports whether k is the zero value.
func (k NodePrivate) IsZero() bool { return k.Equal(NodePrivate{}) }

// Equal reports whether k and other are the same key, in constant time.
func (k NodePrivate) Equal(other NodePrivate) bool {
	return subtle.ConstantTimeCompare(k.k[:], other.k[:]) == 1
}

// Raw32 returns the raw bytes of k.
func (k NodePrivate) Raw32() [32]byte { return k.k }

// Public returns the public key of k. The public key of the zero private key
// is the zero public key.
func (k NodePrivate) Public() NodePublic {
	if k.IsZero() {
		return NodePublic{}
	}
	var pub NodePublic
	out, err := curve25519.X25519(k.k[:], curve25519.Basepoint)
	if err != nil {
		// Only a low-order point can fail, and the base point is not one.
		panic("key: X25519 with the base point failed: " + err.Error())
	}
	copy(pub.k[:], out)
	return pub
}

// String returns "privkey:" and 64 hex digits. It reveals the secret.
func (k NodePrivate) String() string { return string(appendHex(nil, nodePrivatePrefix, &k.k)) }

// AppendText implements encoding.TextAppender.
func (k NodePrivate) AppendText(b []byte) ([]byte, error) {
	return appendHex(b, nodePrivatePrefix, &k.k), nil
}

// MarshalText implements encoding.TextMarshaler with the "privkey:" form.
func (k NodePrivate) MarshalText() ([]byte, error) { return k.AppendText(nil) }

// UnmarshalText implements encoding.TextUnmarshaler for the "privkey:" form.
func (k *NodePrivate) UnmarshalText(text []byte) error {
	return parseHex(&k.k, text, nodePrivatePrefix)
}

// NodePublic is a node's public key: the address of a DERP client and the
// identity of a DERP server. The zero value means "no key".
type NodePublic struct {
	k [32]byte
}

// NodePublicFromRaw32 returns the public key whose raw bytes are raw.
func NodePublicFromRaw32(raw [32]byte) NodePublic { return NodePublic{k: raw} }

// NodePublicFromBytes returns the public key held in the first 32 bytes of
// b. It panics if b is shorter than 32 bytes.
func NodePublicFromBytes(b []byte) NodePublic {
	return NodePublic{k: [32]byte(b[:32])}
}

// ParseNodePublicUntyped parses the untyped 64-hex-digit form of a public
// key, as used in the Derp-Public-Key header and the meta certificate.
func ParseNodePublicUntyped(s string) (NodePublic, error) {
	var k NodePublic
	err := parseHex(&k.k, []byte(s), "")
	return k, err
}

// IsZero reports whether k is the zero value.
func (k NodePublic) IsZero() bool { return k == NodePublic{} }

// Raw32 returns the raw bytes of k.
func (k NodePublic) Raw32() [32]byte { return k.k }

// AppendTo appends the 32 raw bytes of k to b.
func (k NodePublic) AppendTo(b []byte) []byte { return append(b, k.k[:]...) }

// String returns "nodekey:" and 64 lowercase hex digits.
func (k NodePublic) String() string { return string(appendHex(nil, nodePublicPrefix, &k.k)) }

// UntypedHexString returns the 64 lowercase hex digits of k, without prefix.
func (k NodePublic) UntypedHexString() string { return string(appendHex(nil, "", &k.k)) }

// ShortString returns a short form for logs: "[" + the first five
// characters of the standard base64 encoding + "]". The zero key returns "".
func (k NodePublic) ShortString() string {
	if k.IsZero() {
		return ""
	}
	var buf [44]byte
	base64.StdEncoding.Encode(buf[:], k.k[:])
	return "[" + string(buf[:5]) + "]"
}

// AppendText implements encoding.TextAppender.
func (k NodePublic) AppendText(b []byte) ([]byte, error) {
	return appendHex(b, nodePublicPrefix, &k.k), nil
}

// MarshalText implements encoding.TextMarshaler with the "nodekey:" form.
func (k NodePublic) MarshalText() ([]byte, error) { return k.AppendText(nil) }

// UnmarshalText implements encoding.TextUnmarshaler for the "nodekey:" form.
func (k *NodePublic) UnmarshalText(text []byte) error {
	return parseHex(&k.k, text, nodePublicPrefix)
}
