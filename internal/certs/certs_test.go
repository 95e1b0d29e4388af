package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openderp/openderp/derphttp"
)

// writeTestCert writes <dir>/<file>.crt and .key for a certificate
// valid for names (DNS names or IP literals) and returns its DER.
func writeTestCert(t *testing.T, dir, file string, names ...string) []byte {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, file+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, file+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return der
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Config{Mode: ModeManual}); err == nil || err.Error() != "missing required --certdir flag" {
		t.Errorf("no dir: %v", err)
	}
	if _, err := New(Config{Mode: "bogus", Dir: t.TempDir()}); err == nil || err.Error() != `unsupport cert mode: "bogus"` {
		t.Errorf("bad mode: %v", err)
	}
	dir := t.TempDir()
	if _, err := New(Config{Mode: ModeManual, Dir: dir, Hostname: "derp.example"}); err == nil {
		t.Error("missing files: no error")
	}
	writeTestCert(t, dir, "derp.example", "other.example")
	if _, err := New(Config{Mode: ModeManual, Dir: dir, Hostname: "derp.example"}); err == nil || !strings.Contains(err.Error(), "other.example") {
		t.Errorf("wrong name: %v", err)
	}
}

func TestManualFileName(t *testing.T) {
	for in, want := range map[string]string{"derp.example.com": "derp.example.com", "../../etc/passwd": "....etcpasswd", "a_b:c": "abc", "2001:db8::1": "2001db81"} {
		if got := manualFileName(in); got != want {
			t.Errorf("manualFileName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestManualSNI(t *testing.T) {
	dir := t.TempDir()
	writeTestCert(t, dir, "derp.example", "derp.example")
	writeTestCert(t, dir, "127.0.0.1", "127.0.0.1")
	tests := []struct {
		hostname, sni string
		ok            bool
	}{
		{"derp.example", "derp.example", true},
		{"derp.example", "DERP.example", false},
		{"derp.example", "", false},
		{"derp.example", "x.example", false},
		{"127.0.0.1", "", true},
		{"127.0.0.1", "127.0.0.1", true},
		{"127.0.0.1", "x.example", true}, // no SNI check for an IP host name
	}
	for _, tt := range tests {
		p, err := New(Config{Mode: ModeManual, Dir: dir, Hostname: tt.hostname})
		if err != nil {
			t.Fatal(err)
		}
		c, err := p.TLSConfig().GetCertificate(&tls.ClientHelloInfo{ServerName: tt.sni})
		if (err == nil) != tt.ok {
			t.Errorf("host %q sni %q: err %v, want ok=%v", tt.hostname, tt.sni, err, tt.ok)
		}
		if err == nil && len(c.Certificate) != 1 {
			t.Errorf("chain length %d", len(c.Certificate))
		}
	}
}

func TestManualHandshakeWithMetaCert(t *testing.T) {
	dir := t.TempDir()
	der := writeTestCert(t, dir, "derp.example", "derp.example")
	meta := writeTestCert(t, t.TempDir(), "meta", "derpkey0123")
	p, err := New(Config{Mode: ModeManual, Dir: dir, Hostname: "derp.example"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := p.TLSConfig()
	if cfg.MinVersion != tls.VersionTLS12 || len(cfg.NextProtos) != 1 || cfg.NextProtos[0] != "http/1.1" {
		t.Errorf("config: min %x alpn %v", cfg.MinVersion, cfg.NextProtos)
	}
	inner := cfg.GetCertificate
	cfg.GetCertificate = derphttp.GetCertificateWithMetaCert(inner, meta)

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = cfg
	srv.StartTLS()
	defer srv.Close()

	leaf, _ := x509.ParseCertificate(der)
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	for i := range 2 { // twice: the shared chain must not grow
		conn, err := tls.Dial("tcp", srv.Listener.Addr().String(), &tls.Config{ServerName: "derp.example", RootCAs: roots})
		if err != nil {
			t.Fatal(err)
		}
		certs := conn.ConnectionState().PeerCertificates
		conn.Close()
		if len(certs) != 2 || certs[1].Subject.CommonName != "derpkey0123" {
			t.Fatalf("dial %d: got %d certs", i, len(certs))
		}
	}
	if _, err := tls.Dial("tcp", srv.Listener.Addr().String(), &tls.Config{ServerName: "x.example", InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}); err == nil {
		t.Error("wrong SNI accepted")
	}
	if _, err := tls.Dial("tcp", srv.Listener.Addr().String(), &tls.Config{ServerName: "derp.example", RootCAs: roots, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("TLS 1.1 accepted")
	}
}

func TestTailscaleHostPolicy(t *testing.T) {
	p, _ := newACME(Config{Mode: ModeLetsEncrypt, Dir: t.TempDir(), Hostname: tailscaleHostname}, nil)
	for host, ok := range map[string]bool{"derp1b.tailscale.com": true, "derp-nyc.tailscale.com": true, "derp.tailscale.com": true, "derp02.bar.tailscale.com": false, "evil.com": false} {
		if err := p.m.HostPolicy(t.Context(), host); (err == nil) != ok {
			t.Errorf("%s: %v", host, err)
		}
	}
	if p.m.Email != "security@tailscale.com" {
		t.Errorf("email %q", p.m.Email)
	}
	q, _ := newACME(Config{Mode: ModeLetsEncrypt, Dir: t.TempDir(), Hostname: "derp.example"}, nil)
	if q.m.HostPolicy(t.Context(), "derp.example") != nil || q.m.HostPolicy(t.Context(), "derp1.tailscale.com") == nil {
		t.Error("whitelist policy wrong")
	}
	if q.m.Client.DirectoryURL != "https://acme-v02.api.letsencrypt.org/directory" {
		t.Errorf("directory %q", q.m.Client.DirectoryURL)
	}
	alpn := strings.Join(q.TLSConfig().NextProtos, ",")
	if alpn != "h2,http/1.1,acme-tls/1" {
		t.Errorf("ALPN %s", alpn)
	}
}
