package derp

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"time"
)

// MetaCertCommonNamePrefix starts the subject common name of a meta
// certificate; the untyped hex server key follows it.
const MetaCertCommonNamePrefix = "derpkey"

// generateMetaCert makes the self-signed certificate that carries the
// server's key (in the common name) and protocol version (as the serial
// number). Clients read it from the TLS chain and never verify it, so its
// key pair is thrown away and it is valid for 30 days either side of now.
func (s *Server) generateMetaCert() []byte {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic("derp: generating meta certificate key: " + err.Error())
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ProtocolVersion),
		Subject: pkix.Name{
			CommonName: MetaCertCommonNamePrefix + s.pub.UntypedHexString(),
		},
		NotBefore:             now.Add(-30 * 24 * time.Hour),
		NotAfter:              now.Add(30 * 24 * time.Hour),
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		panic("derp: creating meta certificate: " + err.Error())
	}
	return der
}
