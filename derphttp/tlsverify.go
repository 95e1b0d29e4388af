package derphttp

import (
	"crypto/x509"
	_ "embed"
	"errors"
	"sync"
)

// isrgRootX1PEM is Let's Encrypt's "ISRG Root X1" root certificate
// (SHA-256 fingerprint 96:BC:EC:06:26:49:76:F3:74:60:77:9A:CF:28:C5:A7:
// CF:E8:A3:C0:AA:E1:1A:8F:FC:EE:05:C0:BD:DF:08:C6). Most DERP servers use
// Let's Encrypt certificates, so clients on systems with a stale or empty
// root store can still reach them.
//
//go:embed isrg_root_x1.pem
var isrgRootX1PEM []byte

var isrgRoots = sync.OnceValue(func() *x509.CertPool {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(isrgRootX1PEM) {
		panic("derphttp: bad embedded ISRG Root X1 certificate")
	}
	return p
})

// verifyServerCert checks that the leaf of certs is valid for name, with
// the other certificates as intermediates, against roots (nil: the
// system's) and, failing that, against the embedded ISRG Root X1. The
// error is the one from the first check.
func verifyServerCert(certs []*x509.Certificate, name string, roots *x509.CertPool) error {
	if len(certs) == 0 {
		return errors.New("derphttp: server presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter}
	_, err := certs[0].Verify(opts)
	if err == nil {
		return nil
	}
	opts.Roots = isrgRoots()
	if _, err2 := certs[0].Verify(opts); err2 == nil {
		return nil
	}
	return err
}
