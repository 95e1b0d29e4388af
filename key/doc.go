// Package key holds the Curve25519 key types DERP uses to name its peers:
// node keys, which identify clients and servers, and disco keys, which the
// relay carries opaquely for peer-to-peer discovery.
//
// Every key is a 32-byte value type that is safe to copy and compare with ==
// (private keys should be compared with Equal, which runs in constant time).
// Keys have typed text forms ("privkey:", "nodekey:", "discokey:" followed by
// 64 hex digits) used in configuration files and JSON, and public node keys
// also have an untyped 64-digit hex form used in HTTP headers and TLS
// certificates.
//
// NodePrivate.SealTo and NodePrivate.OpenFrom implement the NaCl box
// exchange used by the DERP handshake. Zero and low-order keys are rejected
// there instead of producing a predictable shared secret.
package key
