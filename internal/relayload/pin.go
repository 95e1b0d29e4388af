package relayload

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// PinPrefix starts a certificate pin: PinPrefix followed by the hex
// SHA-256 of the server's leaf certificate (its DER bytes), the form DERP
// maps use in a node's CertName.
const PinPrefix = "sha256-raw:"

// ParsePin parses a pin of the form "sha256-raw:<64 hex digits>".
func ParsePin(s string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	h, ok := strings.CutPrefix(s, PinPrefix)
	if !ok {
		return sum, fmt.Errorf("relayload: pin %q does not start with %q", s, PinPrefix)
	}
	if len(h) != 2*sha256.Size {
		return sum, fmt.Errorf("relayload: pin has %d hex digits, want %d", len(h), 2*sha256.Size)
	}
	if _, err := hex.Decode(sum[:], []byte(h)); err != nil {
		return sum, fmt.Errorf("relayload: pin: %w", err)
	}
	return sum, nil
}

// PinnedTLSConfig returns a TLS configuration that accepts exactly the
// server whose leaf certificate hashes to pin, whatever its name, issuer or
// validity dates, as for a self-signed relay reached by IP address.
func PinnedTLSConfig(pin string) (*tls.Config, error) {
	want, err := ParsePin(pin)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		// The chain is not checked; VerifyConnection checks the pin instead.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("relayload: server sent no certificate")
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				return fmt.Errorf("relayload: server certificate %s%x does not match the pin", PinPrefix, got)
			}
			return nil
		},
	}, nil
}
