package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"testing"
	"time"
)

// testPair returns PEM certificate and key for a self-signed certificate
// for name, valid from notBefore to notAfter.
func testPair(t *testing.T, name string, notBefore, notAfter time.Time) (crtPEM, keyPEM []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
}

// TestManualReload swaps good pairs in and keeps the old one for every
// kind of bad pair.
func TestManualReload(t *testing.T) {
	const host = "derp.example.test"
	now := time.Now()
	day := 24 * time.Hour
	dir := t.TempDir()
	crt, keyFile := ManualFiles(dir, host)
	write := func(c, k []byte) {
		t.Helper()
		if err := os.WriteFile(crt, c, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, k, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c0, k0 := testPair(t, host, now.Add(-day), now.Add(day))
	write(c0, k0)
	p, err := New(Config{Mode: ModeManual, Dir: dir, Hostname: host})
	if err != nil {
		t.Fatal(err)
	}
	r, ok := p.(Reloader)
	if !ok {
		t.Fatal("manual provider is not a Reloader")
	}
	if gc, gk := r.Files(); gc != crt || gk != keyFile {
		t.Errorf("Files() = %q, %q", gc, gk)
	}
	served := func() []byte {
		t.Helper()
		c, err := p.TLSConfig().GetCertificate(&tls.ClientHelloInfo{ServerName: host})
		if err != nil {
			t.Fatal(err)
		}
		return c.Certificate[0]
	}

	_, otherKey := testPair(t, host, now.Add(-day), now.Add(day))
	expiredC, expiredK := testPair(t, host, now.Add(-2*day), now.Add(-day))
	futureC, futureK := testPair(t, host, now.Add(day), now.Add(2*day))
	wrongC, wrongK := testPair(t, "other.example", now.Add(-day), now.Add(day))
	goodC, goodK := testPair(t, host, now.Add(-day), now.Add(3*day))
	tests := []struct {
		name    string
		setup   func()
		ok      bool
		expired bool
	}{
		{"key missing", func() { write(goodC, goodK); os.Remove(keyFile) }, false, false},
		{"key not matching", func() { write(goodC, otherKey) }, false, false},
		{"expired", func() { write(expiredC, expiredK) }, false, true},
		{"not yet valid", func() { write(futureC, futureK) }, false, true},
		{"other host name", func() { write(wrongC, wrongK) }, false, false},
		{"garbage", func() { write([]byte("not pem"), goodK) }, false, false},
		{"crt unreadable", func() { os.Remove(crt); os.Mkdir(crt, 0o700) }, false, false},
		{"good", func() { os.Remove(crt); write(goodC, goodK) }, true, false},
	}
	want := r.Leaf().Raw
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.setup()
			err := r.Reload()
			if (err == nil) != tt.ok {
				t.Fatalf("Reload: %v, want ok=%v", err, tt.ok)
			}
			var ee *ExpiredError
			if errors.As(err, &ee) != tt.expired {
				t.Errorf("error %v: ExpiredError %v, want %v", err, !tt.expired, tt.expired)
			}
			if tt.ok {
				blk, _ := pem.Decode(goodC)
				want = blk.Bytes
			}
			if got := served(); string(got) != string(want) || string(r.Leaf().Raw) != string(want) {
				t.Errorf("served certificate changed=%v, want changed=%v", string(got) != string(want), tt.ok)
			}
		})
	}
}
