package derphttp

import (
	"crypto/x509"
	"encoding/pem"
	"testing"
)

func TestEmbeddedISRGRoot(t *testing.T) {
	b, _ := pem.Decode(isrgRootX1PEM)
	if b == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject.CommonName != "ISRG Root X1" || !c.IsCA {
		t.Fatalf("embedded root is %q (CA %v)", c.Subject.CommonName, c.IsCA)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Fatalf("root is not self-signed: %v", err)
	}
	if isrgRoots() == nil {
		t.Fatal("no pool")
	}
	if err := verifyServerCert(nil, "x", nil); err == nil {
		t.Fatal("verifyServerCert(no certs) succeeded")
	}
}
