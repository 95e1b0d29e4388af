package derphttp

import (
	"crypto/tls"
	"crypto/x509"
	"strings"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/key"
)

// ParseMetaCert looks through a server's certificate chain for a DERP
// meta certificate and returns the server key and protocol version it
// carries. It takes the first certificate whose subject common name starts
// with derp.MetaCertCommonNamePrefix, followed by a key in untyped hex, and
// whose serial number (the version) is between 0 and 255. The
// certificate's dates and signature are not checked: it only saves a
// round trip, and the DERP handshake authenticates the key anyway.
//
// ok is false if there is no such certificate.
func ParseMetaCert(certs []*x509.Certificate) (pub key.NodePublic, version int, ok bool) {
	for _, c := range certs {
		if c == nil || c.SerialNumber == nil {
			continue
		}
		hex, found := strings.CutPrefix(c.Subject.CommonName, derp.MetaCertCommonNamePrefix)
		if !found {
			continue
		}
		k, err := key.ParseNodePublicUntyped(hex)
		if err != nil {
			continue
		}
		sn := c.SerialNumber
		// See docs/compat.md#meta-cert-serial.
		if sn.Sign() < 0 || sn.BitLen() > 8 {
			continue
		}
		return k, int(sn.Int64()), true
	}
	return key.NodePublic{}, 0, false
}

// metaCertFromState returns the key from the meta certificate of a TLS 1.3
// connection. Under TLS 1.2 the chain travels in the clear and a
// middlebox might have replaced it, so it is ignored there.
func metaCertFromState(cs *tls.ConnectionState) (key.NodePublic, bool) {
	if cs.Version < tls.VersionTLS13 {
		return key.NodePublic{}, false
	}
	k, v, ok := ParseMetaCert(cs.PeerCertificates)
	if !ok || v == 0 {
		return key.NodePublic{}, false
	}
	return k, true
}

// AppendMetaCert returns a copy of cert whose chain ends with the DER
// meta certificate meta (from derp.Server.MetaCert). cert itself is not
// modified, so a certificate cache may keep handing it out.
func AppendMetaCert(cert *tls.Certificate, meta []byte) *tls.Certificate {
	c := *cert
	c.Certificate = append(cert.Certificate[:len(cert.Certificate):len(cert.Certificate)], meta)
	return &c
}

// GetCertificateWithMetaCert wraps a tls.Config.GetCertificate function so
// that every certificate it returns carries the meta certificate meta at
// the end of its chain, as a DERP server's TLS listener should.
func GetCertificateWithMetaCert(get func(*tls.ClientHelloInfo) (*tls.Certificate, error), meta []byte) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
		c, err := get(hi)
		if err != nil || c == nil {
			return c, err
		}
		return AppendMetaCert(c, meta), nil
	}
}
