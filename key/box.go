package key

import (
	"crypto/rand"
	"fmt"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/nacl/box"
)

// BoxOverhead is how many bytes SealTo adds to a message: a 24-byte nonce
// and a 16-byte authenticator.
const BoxOverhead = 24 + box.Overhead

// sharedKey computes the NaCl box key between priv and pub, as
// box.Precompute does, but refuses zero and low-order keys, which would
// give an all-zero X25519 result and a key any observer could compute.
func sharedKey(priv NodePrivate, pub NodePublic) (*[32]byte, error) {
	if priv.IsZero() || pub.IsZero() {
		return nil, ErrZeroKey
	}
	// X25519 fails when the shared point is all zeros, which box.Precompute
	// would not notice; its result then goes through the same HSalsa20
	// step as in box.Precompute, so one scalar multiplication does.
	x, err := curve25519.X25519(priv.k[:], pub.k[:])
	if err != nil {
		return nil, fmt.Errorf("key: computing shared secret: %w", err)
	}
	var k [32]byte
	hsalsa(&k, (*[32]byte)(x))
	return &k, nil
}

// SealTo encrypts and authenticates cleartext from k to p with NaCl box.
// The result is a fresh 24-byte nonce followed by the box, so it is
// len(cleartext)+BoxOverhead bytes long. It fails only for zero or
// low-order keys.
func (k NodePrivate) SealTo(p NodePublic, cleartext []byte) ([]byte, error) {
	sk, err := sharedKey(k, p)
	if err != nil {
		return nil, err
	}
	var nonce [24]byte
	rand.Read(nonce[:])
	out := make([]byte, 24, BoxOverhead+len(cleartext))
	copy(out, nonce[:])
	return box.SealAfterPrecomputation(out, cleartext, &nonce, sk), nil
}

// OpenFrom decrypts a message that p sealed to k with SealTo. It reports
// false if the message is too short, was not sealed by p for k, was
// altered, or if either key is zero or of low order.
func (k NodePrivate) OpenFrom(p NodePublic, ciphertext []byte) ([]byte, bool) {
	if len(ciphertext) < BoxOverhead {
		return nil, false
	}
	sk, err := sharedKey(k, p)
	if err != nil {
		return nil, false
	}
	nonce := (*[24]byte)(ciphertext[:24])
	return box.OpenAfterPrecomputation(nil, ciphertext[24:], nonce, sk)
}
