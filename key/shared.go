package key

import (
	"crypto/ecdh"
	"crypto/rand"
	"fmt"

	"golang.org/x/crypto/nacl/box"
	//lint:ignore SA1019 HSalsa20 is NaCl box's own key derivation, which box exports only fused with a scalar multiplication that cannot reject low-order keys.
	"golang.org/x/crypto/salsa20/salsa"
)

// A NodeAgreer is a node private key prepared for many key agreements,
// as a server makes with each client. The part of the work that depends
// only on the private key is done once, in NodePrivate.Agreer.
type NodeAgreer struct {
	priv *ecdh.PrivateKey
}

// Agreer prepares k for repeated key agreement. It fails only for the
// zero key.
func (k NodePrivate) Agreer() (*NodeAgreer, error) {
	if k.IsZero() {
		return nil, ErrZeroKey
	}
	p, err := ecdh.X25519().NewPrivateKey(k.k[:])
	if err != nil {
		return nil, fmt.Errorf("key: preparing private key: %w", err)
	}
	return &NodeAgreer{priv: p}, nil
}

// SharedBox returns the NaCl box key shared with p. Sealing with it gives
// the same boxes as SealTo, and opening accepts what p sealed with SealTo.
// It fails for zero and low-order keys.
func (a *NodeAgreer) SharedBox(p NodePublic) (*SharedBox, error) {
	if p.IsZero() {
		return nil, ErrZeroKey
	}
	pub, err := ecdh.X25519().NewPublicKey(p.k[:])
	if err != nil {
		return nil, fmt.Errorf("key: parsing public key: %w", err)
	}
	// ECDH fails when the result is all zeros, i.e. for low-order points.
	z, err := a.priv.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("key: computing shared secret: %w", err)
	}
	sb := new(SharedBox)
	hsalsa(&sb.k, (*[32]byte)(z))
	return sb, nil
}

// hsalsa turns an X25519 result into a NaCl box key, as box.Precompute
// does after its scalar multiplication.
func hsalsa(out, x *[32]byte) {
	var zeros [16]byte
	salsa.HSalsa20(out, &zeros, x, &salsa.Sigma)
}

// A SharedBox is the NaCl box key two node keys share: each can open what
// the other seals.
type SharedBox struct {
	k [32]byte
}

// Seal encrypts and authenticates cleartext like NodePrivate.SealTo: a
// fresh 24-byte nonce followed by the box.
func (b *SharedBox) Seal(cleartext []byte) []byte {
	var nonce [24]byte
	rand.Read(nonce[:])
	out := make([]byte, 24, BoxOverhead+len(cleartext))
	copy(out, nonce[:])
	return box.SealAfterPrecomputation(out, cleartext, &nonce, &b.k)
}

// Open decrypts a message sealed by the other key, like
// NodePrivate.OpenFrom.
func (b *SharedBox) Open(ciphertext []byte) ([]byte, bool) {
	if len(ciphertext) < BoxOverhead {
		return nil, false
	}
	nonce := (*[24]byte)(ciphertext[:24])
	return box.OpenAfterPrecomputation(nil, ciphertext[24:], nonce, &b.k)
}
