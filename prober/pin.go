package prober

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// pinPrefix starts a DERP map CertName that pins one certificate by the
// SHA-256 of its DER encoding.
const pinPrefix = "sha256-raw:"

// VerifyPin checks a chain presented by a node whose CertName is
// "sha256-raw:"+pin: ignoring DERP meta certificates (subject CN starting
// "derpkey"), exactly one certificate must remain; the lowercase hex
// SHA-256 of its DER must equal pin exactly; it must be valid for sni
// unless sni is empty; and now must lie within its validity period.
// Chains and roots are not consulted.
//
// It is the prober's copy of the check derphttp clients make.
// See docs/compat.md#prober-tls.
func VerifyPin(certs []*x509.Certificate, pin, sni string, now time.Time) error {
	var cert *x509.Certificate
	for _, c := range certs {
		if strings.HasPrefix(c.Subject.CommonName, "derpkey") {
			continue
		}
		if cert != nil {
			return errors.New("pinned certificate: unexpected multiple certs presented")
		}
		cert = c
	}
	if cert == nil {
		return errors.New("pinned certificate: no certificate presented")
	}
	sum := sha256.Sum256(cert.Raw)
	if got := hex.EncodeToString(sum[:]); got != pin {
		return fmt.Errorf("pinned certificate: sha256 %s does not match pin %s", got, pin)
	}
	if sni != "" {
		if err := cert.VerifyHostname(sni); err != nil {
			return fmt.Errorf("pinned certificate: %w", err)
		}
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return fmt.Errorf("pinned certificate: valid from %v to %v, not at %v",
			cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	return nil
}

// isIPLiteral reports whether host is an IP address, to which TLS clients
// send no SNI.
func isIPLiteral(host string) bool {
	_, err := netip.ParseAddr(host)
	return err == nil
}
