package derphttp

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derpmap"
)

// VerifyCertPin checks the certificates a DERP server presented against a
// pin, a derpmap.Node.CertName of the form "sha256-raw:<hex>" (see
// derpmap.CertPin). It takes the place of chain verification:
//
//   - meta certificates (subject common name starting with "derpkey")
//     are ignored;
//   - exactly one other certificate must be present, so a server using a
//     pin must not send intermediates;
//   - the lowercase hex SHA-256 of its DER encoding must equal the text
//     after the prefix, exactly;
//   - if serverName is not empty (the client sent it as SNI), the
//     certificate must be valid for it;
//   - the current time must lie within its validity period.
func VerifyCertPin(certs []*x509.Certificate, pin, serverName string) error {
	return verifyCertPinAt(certs, pin, serverName, time.Now())
}

func verifyCertPinAt(certs []*x509.Certificate, pin, serverName string, now time.Time) error {
	want, ok := strings.CutPrefix(pin, derpmap.CertPinPrefix)
	if !ok {
		return fmt.Errorf("derphttp: certificate pin %q lacks the %q prefix", pin, derpmap.CertPinPrefix)
	}
	var leaf *x509.Certificate
	for _, c := range certs {
		if strings.HasPrefix(c.Subject.CommonName, derp.MetaCertCommonNamePrefix) {
			continue
		}
		if leaf != nil {
			return errors.New("derphttp: unexpected multiple certs presented for a pinned certificate")
		}
		leaf = c
	}
	if leaf == nil {
		return errors.New("derphttp: no certificate presented for a pinned certificate")
	}
	sum := sha256.Sum256(leaf.Raw)
	if got := hex.EncodeToString(sum[:]); got != want {
		return fmt.Errorf("derphttp: certificate sha256 %s does not match the pinned %s", got, want)
	}
	if serverName != "" {
		if err := leaf.VerifyHostname(serverName); err != nil {
			return fmt.Errorf("derphttp: pinned certificate: %w", err)
		}
	}
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return fmt.Errorf("derphttp: pinned certificate not valid at %v (valid %v to %v)", now.UTC().Format(time.RFC3339), leaf.NotBefore, leaf.NotAfter)
	}
	return nil
}
