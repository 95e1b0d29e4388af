package derp

import (
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// MeshKeyLen is the size of a mesh key in bytes; its text form is twice
// as many hex digits.
const MeshKeyLen = 32

// errMeshKeyLen is the reference's wording for a key of the wrong length.
var errMeshKeyLen = errors.New("must be 64-digit hexadecimal number")

// ParseMeshKey parses the text form of a mesh key, as found in a key file:
// surrounding white space is ignored and exactly 64 hex digits, in either
// case, must remain.
func ParseMeshKey(s string) ([MeshKeyLen]byte, error) {
	var k [MeshKeyLen]byte
	s = strings.TrimSpace(s)
	if len(s) != 2*MeshKeyLen {
		return k, fmt.Errorf("invalid mesh key: %w", errMeshKeyLen)
	}
	if _, err := hex.Decode(k[:], []byte(s)); err != nil {
		return k, fmt.Errorf("invalid mesh key: %w", err)
	}
	return k, nil
}

// meshKeyMatches reports whether a client's meshKey text matches the
// server's key text mk, which is non-empty. The comparison takes the same
// time wherever the keys differ (advisory TS-2025-003).
//
// When mk is a 64-digit hex key, as every key file must be today, both
// sides are compared as decoded bytes, so hex case does not matter, as
// with the reference since v1.86. A client text that does not decode is
// simply not the mesh key: a v1.76.3 server treated it so, where v1.86
// and later fail the handshake. See docs/compat.md#mesh-key-wire.
// Any other mk (an old-style key of more digits) is compared as text.
// The all-zero key is "no key", as in the reference: it matches nothing.
func meshKeyMatches(mk, client string) bool {
	if client == "" {
		return false
	}
	if want, err := ParseMeshKey(mk); err == nil && len(mk) == 2*MeshKeyLen {
		if want == ([MeshKeyLen]byte{}) {
			return false
		}
		got, err := ParseMeshKey(client)
		if err != nil || len(client) != 2*MeshKeyLen {
			return false
		}
		return subtle.ConstantTimeCompare(want[:], got[:]) == 1
	}
	return subtle.ConstantTimeCompare([]byte(mk), []byte(client)) == 1
}

// wireMeshKey returns the text a client sends for its mesh key k: the
// lowercase form of a 64-digit hex key, as clients since v1.86 send,
// nothing for the all-zero key, and any other text unchanged.
func wireMeshKey(k string) string {
	if b, err := ParseMeshKey(k); err == nil && len(k) == 2*MeshKeyLen {
		if b == ([MeshKeyLen]byte{}) {
			return ""
		}
		return hex.EncodeToString(b[:])
	}
	return k
}
