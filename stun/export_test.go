package stun

// Names for tests in package stun_test.
const (
	MagicCookie    = magicCookie
	FingerprintXOR = fingerprintXOR
)

// Fingerprint exposes the FINGERPRINT computation.
var Fingerprint = fingerprint
