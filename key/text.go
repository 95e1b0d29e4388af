package key

import (
	"encoding/hex"
	"errors"
	"fmt"
)

// Text prefixes of the typed key forms.
const (
	nodePrivatePrefix = "privkey:"
	nodePublicPrefix  = "nodekey:"
	discoPublicPrefix = "discokey:"
)

// ErrZeroKey is returned when an all-zero key is used where a real key is
// required, such as sealing or opening a box.
var ErrZeroKey = errors.New("key: zero key")

// ParseError reports why a text key could not be parsed. It never contains
// the input itself, which may be a secret.
type ParseError struct {
	Prefix string // the typed prefix that was expected, or "" for untyped hex
	Reason string // what was wrong, e.g. `missing prefix "nodekey:"`
}

func (e *ParseError) Error() string {
	if e.Prefix == "" {
		return "key: parsing untyped hex key: " + e.Reason
	}
	return fmt.Sprintf("key: parsing %q key: %s", e.Prefix, e.Reason)
}

// appendHex appends prefix and the lowercase hex form of raw to b.
func appendHex(b []byte, prefix string, raw *[32]byte) []byte {
	b = append(b, prefix...)
	return hex.AppendEncode(b, raw[:])
}

// parseHex parses prefix followed by exactly 64 hex digits (either case)
// into dst.
func parseHex(dst *[32]byte, text []byte, prefix string) error {
	if len(text) < len(prefix) || string(text[:len(prefix)]) != prefix {
		return &ParseError{Prefix: prefix, Reason: fmt.Sprintf("missing prefix %q", prefix)}
	}
	text = text[len(prefix):]
	if len(text) != 64 {
		return &ParseError{Prefix: prefix, Reason: fmt.Sprintf("want 64 hex digits, got %d characters", len(text))}
	}
	var out [32]byte
	for i := range 32 {
		hi, ok1 := fromHexChar(text[2*i])
		lo, ok2 := fromHexChar(text[2*i+1])
		if !ok1 || !ok2 {
			pos := 2 * i
			if ok1 {
				pos++
			}
			return &ParseError{Prefix: prefix, Reason: fmt.Sprintf("invalid hex digit at position %d", pos+len(prefix))}
		}
		out[i] = hi<<4 | lo
	}
	*dst = out
	return nil
}

func fromHexChar(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
