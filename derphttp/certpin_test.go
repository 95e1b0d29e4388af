package derphttp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/derpmap"
	"github.com/openderp/openderp/key"
)

// pinTestCert makes a self-signed certificate for an IP and a DNS name.
func pinTestCert(t *testing.T, cn string, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     []string{"derp.test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestVerifyCertPin(t *testing.T) {
	now := time.Now()
	leaf := pinTestCert(t, "127.0.0.1", now.Add(-time.Hour), now.Add(time.Hour))
	other := pinTestCert(t, "127.0.0.1", now.Add(-time.Hour), now.Add(time.Hour))
	expired := pinTestCert(t, "127.0.0.1", now.Add(-2*time.Hour), now.Add(-time.Hour))
	meta := pinTestCert(t, "derpkey0123", now.Add(-time.Hour), now.Add(time.Hour))
	pin := derpmap.CertPin(leaf.Raw)
	tests := []struct {
		name  string
		certs []*x509.Certificate
		pin   string
		sni   string
		err   string // "" means accepted
	}{
		{"match", []*x509.Certificate{leaf}, pin, "", ""},
		{"match with meta", []*x509.Certificate{leaf, meta}, pin, "", ""},
		{"meta first", []*x509.Certificate{meta, leaf}, pin, "", ""},
		{"sni matches", []*x509.Certificate{leaf}, pin, "derp.test", ""},
		{"sni mismatch", []*x509.Certificate{leaf}, pin, "elsewhere.test", "elsewhere.test"},
		{"wrong pin", []*x509.Certificate{other}, pin, "", "does not match"},
		{"uppercase pin", []*x509.Certificate{leaf}, "sha256-raw:" + strings.ToUpper(strings.TrimPrefix(pin, "sha256-raw:")), "", "does not match"},
		{"no prefix", []*x509.Certificate{leaf}, strings.TrimPrefix(pin, "sha256-raw:"), "", "prefix"},
		{"intermediate", []*x509.Certificate{leaf, other}, pin, "", "multiple certs"},
		{"only meta", []*x509.Certificate{meta}, pin, "", "no certificate"},
		{"none", nil, pin, "", "no certificate"},
		{"expired", []*x509.Certificate{expired}, derpmap.CertPin(expired.Raw), "", "not valid"},
	}
	for _, tt := range tests {
		err := derphttp.VerifyCertPin(tt.certs, tt.pin, tt.sni)
		if tt.err == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.err)
		}
	}
}

// TestRegionPinnedCert connects region clients to a server whose
// certificate no root trusts, verifying it by pin only.
func TestRegionPinnedCert(t *testing.T) {
	ca := newTestCA(t)
	ts := newTestServer(t, serverOpts{tls: ca, metaCert: true})
	p := port(t, ts)
	pin := derpmap.CertPin(ca.leaf.Certificate[0])
	bad := derpmap.CertPin([]byte("something else"))
	tests := []struct {
		name string
		node derpmap.Node
		ws   bool
		err  string
	}{
		{"ip host, no sni", derpmap.Node{HostName: "127.0.0.1", CertName: pin}, false, ""},
		{"dns host with sni", derpmap.Node{HostName: "derp.test", IPv4: "127.0.0.1", IPv6: "none", CertName: pin}, false, ""},
		{"wrong pin", derpmap.Node{HostName: "127.0.0.1", CertName: bad}, false, "does not match"},
		{"sni not in cert", derpmap.Node{HostName: "nope.test", IPv4: "127.0.0.1", IPv6: "none", CertName: pin}, false, "nope.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.node
			n.Name, n.RegionID, n.DERPPort = "n", 9, p
			region := &derpmap.Region{RegionID: 9, RegionCode: "pin", Nodes: []*derpmap.Node{&n}}
			c := derphttp.NewRegionClient(key.NewNode(), t.Logf, func() *derpmap.Region { return region })
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := c.Connect(ctx)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("Connect: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("Connect() = %v; want error containing %q", err, tt.err)
			}
		})
	}
}
