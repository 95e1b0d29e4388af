package derphttp_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/key"
)

func makeCert(t *testing.T, cn string, serial int64) *x509.Certificate {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-48 * time.Hour),
		NotAfter:     time.Now().Add(-24 * time.Hour), // expired: must not matter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// withSerial sets a serial number x509.CreateCertificate would refuse.
func withSerial(c *x509.Certificate, n int64) *x509.Certificate {
	c.SerialNumber = big.NewInt(n)
	return c
}

func TestParseMetaCert(t *testing.T) {
	k1, k2 := key.NewNode().Public(), key.NewNode().Public()
	cn := func(k key.NodePublic) string { return derp.MetaCertCommonNamePrefix + k.UntypedHexString() }
	leaf := makeCert(t, "derp.example.net", 77)
	tests := []struct {
		name    string
		certs   []*x509.Certificate
		wantKey key.NodePublic
		wantVer int
		wantOK  bool
	}{
		{"none", nil, key.NodePublic{}, 0, false},
		{"leaf only", []*x509.Certificate{leaf}, key.NodePublic{}, 0, false},
		{"after leaf", []*x509.Certificate{leaf, makeCert(t, cn(k1), 2)}, k1, 2, true},
		{"version 0", []*x509.Certificate{makeCert(t, cn(k1), 0)}, k1, 0, true},
		{"version 255", []*x509.Certificate{makeCert(t, cn(k1), 255)}, k1, 255, true},
		{"version 256", []*x509.Certificate{makeCert(t, cn(k1), 256)}, key.NodePublic{}, 0, false},
		{"negative", []*x509.Certificate{withSerial(makeCert(t, cn(k1), 2), -1)}, key.NodePublic{}, 0, false},
		{"bad hex then good", []*x509.Certificate{makeCert(t, "derpkeyzz", 2), makeCert(t, cn(k2), 2)}, k2, 2, true},
		{"first good wins", []*x509.Certificate{makeCert(t, cn(k1), 2), makeCert(t, cn(k2), 3)}, k1, 2, true},
		{"typed key", []*x509.Certificate{makeCert(t, "derpkey"+k1.String(), 2)}, key.NodePublic{}, 0, false},
		{"nil entry", []*x509.Certificate{nil}, key.NodePublic{}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, v, ok := derphttp.ParseMetaCert(tt.certs)
			if k != tt.wantKey || v != tt.wantVer || ok != tt.wantOK {
				t.Errorf("ParseMetaCert = %v, %d, %v; want %v, %d, %v", k, v, ok, tt.wantKey, tt.wantVer, tt.wantOK)
			}
		})
	}
}

func TestServerMetaCertParses(t *testing.T) {
	s := derp.NewServer(key.NewNode(), nil)
	defer s.Close()
	c, err := x509.ParseCertificate(s.MetaCert())
	if err != nil {
		t.Fatal(err)
	}
	k, v, ok := derphttp.ParseMetaCert([]*x509.Certificate{c})
	if !ok || k != s.PublicKey() || v != derp.ProtocolVersion {
		t.Fatalf("ParseMetaCert(server meta cert) = %v, %d, %v", k, v, ok)
	}
}

func TestAppendMetaCert(t *testing.T) {
	orig := &tls.Certificate{Certificate: make([][]byte, 1, 4)}
	orig.Certificate[0] = []byte("leaf")
	got := derphttp.AppendMetaCert(orig, []byte("meta"))
	if len(orig.Certificate) != 1 || len(got.Certificate) != 2 || string(got.Certificate[1]) != "meta" {
		t.Fatalf("AppendMetaCert: orig %q, got %q", orig.Certificate, got.Certificate)
	}
	// Appending again to the original must not clobber the first copy's
	// chain through a shared backing array.
	got2 := derphttp.AppendMetaCert(orig, []byte("other"))
	if string(got.Certificate[1]) != "meta" || string(got2.Certificate[1]) != "other" {
		t.Fatal("copies share a backing array")
	}
	errGet := derphttp.GetCertificateWithMetaCert(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, nil }, []byte("m"))
	if c, err := errGet(nil); c != nil || err != nil {
		t.Fatalf("nil certificate passed through as %v, %v", c, err)
	}
}

// The certificate source hands out the same object on every handshake,
// as autocert's challenge certificate does; the served chain must not
// grow (v1.76.3 bug #20352).
func TestMetaCertChainNeverGrows(t *testing.T) {
	src := &tls.Certificate{Certificate: [][]byte{[]byte("leaf")}}
	src.Certificate = append(src.Certificate, []byte("intermediate")) // spare capacity
	get := derphttp.GetCertificateWithMetaCert(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return src, nil }, []byte("meta"))
	for i := range 5 {
		c, err := get(nil)
		if err != nil || len(c.Certificate) != 3 || string(c.Certificate[2]) != "meta" || c == src {
			t.Fatalf("handshake %d: chain %q, %v", i, c.Certificate, err)
		}
		if len(src.Certificate) != 2 {
			t.Fatalf("handshake %d changed the source chain to %q", i, src.Certificate)
		}
	}
}
