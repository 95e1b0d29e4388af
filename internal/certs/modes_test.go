package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	key := base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	tests := []struct {
		name string
		cfg  Config
		want string // "" means success
	}{
		{"no dir", Config{Mode: ModeManual}, "missing required --certdir flag"},
		{"no dir beats ip certs", Config{Mode: ModeManual, IPCerts: true}, "missing required --certdir flag"},
		{"ip certs manual", Config{Mode: ModeManual, Dir: dir, IPCerts: true}, "--acme-ip-certs requires --certmode=letsencrypt"},
		{"ip certs gcp", Config{Mode: ModeGCP, Dir: dir, IPCerts: true}, "--acme-ip-certs requires --certmode=letsencrypt"},
		{"letsencrypt ip", Config{Mode: ModeLetsEncrypt, Dir: dir, Hostname: "192.0.2.1"}, "--hostname is an IP address; use --certmode=manual for a self-signed cert, or set --acme-ip-certs to get LetsEncrypt IP address certs"},
		{"gcp no eab", Config{Mode: ModeGCP, Dir: dir, Hostname: "derp.example", Email: "a@example.com"}, "--certmode=gcp requires --acme-eab-kid and --acme-eab-key flags"},
		{"gcp no key", Config{Mode: ModeGCP, Dir: dir, Hostname: "derp.example", Email: "a@example.com", EABKeyID: "kid"}, "--certmode=gcp requires --acme-eab-kid and --acme-eab-key flags"},
		{"gcp no email", Config{Mode: ModeGCP, Dir: dir, Hostname: "derp.example", EABKeyID: "kid", EABKey: key}, "--certmode=gcp requires --acme-email flag"},
		{"gcp ip", Config{Mode: ModeGCP, Dir: dir, Hostname: "192.0.2.1", EABKeyID: "kid", EABKey: key, Email: "a@example.com"}, "--certmode=gcp requires --hostname to be a DNS name, not an IP address"},
		{"gcp bad key", Config{Mode: ModeGCP, Dir: dir, Hostname: "derp.example", EABKeyID: "kid", EABKey: "not base64!", Email: "a@example.com"}, "invalid base64 encoding for EAB key"},
		{"gcp ok", Config{Mode: ModeGCP, Dir: dir, Hostname: "derp.example", EABKeyID: "kid", EABKey: key, Email: "a@example.com"}, ""},
		{"bad mode", Config{Mode: "bogus", Dir: dir}, `unsupport cert mode: "bogus"`},
	}
	for _, tt := range tests {
		_, err := New(tt.cfg)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("%s: error %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestDecodeEABKey(t *testing.T) {
	raw := []byte{0xfb, 0xff, 0x01, 0x02, 0x03}
	for _, s := range []string{base64.RawURLEncoding.EncodeToString(raw), base64.StdEncoding.EncodeToString(raw)} {
		if b, err := decodeEABKey(s); err != nil || string(b) != string(raw) {
			t.Errorf("%q: %x %v", s, b, err)
		}
	}
	if _, err := decodeEABKey("%%%"); err == nil {
		t.Error("garbage accepted")
	}
}

func TestACMEEmailAndDirectory(t *testing.T) {
	key := base64.StdEncoding.EncodeToString([]byte("k"))
	tests := []struct {
		cfg       Config
		email     string
		directory string
		eab       bool
	}{
		{Config{Mode: ModeLetsEncrypt, Hostname: "derp.example"}, "", "https://acme-v02.api.letsencrypt.org/directory", false},
		{Config{Mode: ModeLetsEncrypt, Hostname: "derp.example", Email: "ops@example.com"}, "ops@example.com", "https://acme-v02.api.letsencrypt.org/directory", false},
		{Config{Mode: ModeLetsEncrypt, Hostname: tailscaleHostname}, "security@tailscale.com", "https://acme-v02.api.letsencrypt.org/directory", false},
		{Config{Mode: ModeLetsEncrypt, Hostname: tailscaleHostname, Email: "ops@example.com"}, "ops@example.com", "https://acme-v02.api.letsencrypt.org/directory", false},
		{Config{Mode: ModeGCP, Hostname: "derp.example", Email: "ops@example.com", EABKeyID: "kid", EABKey: key}, "ops@example.com", GCPDirectory, true},
		{Config{Mode: ModeGCP, Hostname: "derp.example", Email: "ops@example.com", EABKeyID: "kid", EABKey: key, DirectoryURL: "https://ca.example/dir"}, "ops@example.com", "https://ca.example/dir", true},
	}
	for i, tt := range tests {
		tt.cfg.Dir = t.TempDir()
		p, err := New(tt.cfg)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		m := p.(*acmeProvider).m
		if m.Email != tt.email || m.Client.DirectoryURL != tt.directory || (m.ExternalAccountBinding != nil) != tt.eab {
			t.Errorf("%d: email %q directory %q eab %v", i, m.Email, m.Client.DirectoryURL, m.ExternalAccountBinding)
		}
		if tt.eab && (m.ExternalAccountBinding.KID != "kid" || string(m.ExternalAccountBinding.Key) != "k") {
			t.Errorf("%d: eab %+v", i, m.ExternalAccountBinding)
		}
	}
}

var pinLine = regexp.MustCompile(`^Using self-signed certificate for IP address "([^"]+)"\. Configure it in DERPMap using: \(https://tailscale\.com/s/custom-derp\)\n  \{"Name":"custom","RegionID":900,"HostName":"([^"]+)","CertName":"sha256-raw:([0-9a-f]{64})"\}$`)

// TestSelfSignedIP checks the generated certificate for an IP host name,
// its files, the logged pin, and that a restart keeps the certificate.
func TestSelfSignedIP(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1", "2001:db8::1"} {
		t.Run(host, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "certs")
			var logs []string
			cfg := Config{Mode: ModeManual, Dir: dir, Hostname: host, Logf: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }}
			p, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			crt, keyFile := ManualFiles(dir, host)
			der := checkGenerated(t, host, crt, keyFile, dir)
			// Generating is logged, then the pin.
			if len(logs) != 2 || !strings.HasPrefix(logs[0], "derper: generated a self-signed certificate for "+host+" in "+crt) {
				t.Fatalf("logs: %q", logs)
			}
			m := pinLine.FindStringSubmatch(logs[1])
			sum := sha256.Sum256(der)
			if m == nil || m[1] != host || m[2] != host || m[3] != hex.EncodeToString(sum[:]) {
				t.Fatalf("pin line %q", logs[1])
			}
			// No SNI, or any SNI, gets the one certificate.
			for _, sni := range []string{"", host, "other.example"} {
				c, err := p.TLSConfig().GetCertificate(&tls.ClientHelloInfo{ServerName: sni})
				if err != nil || len(c.Certificate) != 1 || string(c.Certificate[0]) != string(der) {
					t.Errorf("sni %q: %v", sni, err)
				}
			}
			// A restart loads the same certificate and logs the same pin.
			logs = nil
			if _, err := New(cfg); err != nil {
				t.Fatal(err)
			}
			if len(logs) != 1 || !strings.Contains(logs[0], hex.EncodeToString(sum[:])) {
				t.Errorf("after restart: %q", logs)
			}
		})
	}
}

func checkGenerated(t *testing.T, host, crt, keyFile, dir string) []byte {
	t.Helper()
	for path, mode := range map[string]os.FileMode{crt: 0o644, keyFile: 0o600, dir: 0o700 | os.ModeDir} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), mode)
		}
	}
	kb, _ := os.ReadFile(keyFile)
	kp, _ := pem.Decode(kb)
	if kp == nil || kp.Type != "EC PRIVATE KEY" {
		t.Fatalf("key PEM %q", kb)
	}
	k, err := x509.ParseECPrivateKey(kp.Bytes)
	if err != nil || k.Curve != elliptic.P256() {
		t.Fatalf("key: %v", err)
	}
	cb, _ := os.ReadFile(crt)
	cp, rest := pem.Decode(cb)
	if cp == nil || cp.Type != "CERTIFICATE" || len(strings.TrimSpace(string(rest))) != 0 {
		t.Fatalf("certificate PEM %q", cb)
	}
	c, err := x509.ParseCertificate(cp.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject.CommonName != host || c.Issuer.String() != c.Subject.String() || len(c.IPAddresses) != 1 || len(c.DNSNames) != 0 {
		t.Errorf("subject %v issuer %v IPs %v DNS %v", c.Subject, c.Issuer, c.IPAddresses, c.DNSNames)
	}
	if err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil || c.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		t.Errorf("not self-signed with ECDSA-SHA256: %v %v", err, c.SignatureAlgorithm)
	}
	if c.SerialNumber.BitLen() > 128 || c.SerialNumber.Sign() <= 0 {
		t.Errorf("serial %v", c.SerialNumber)
	}
	if d := time.Since(c.NotBefore); d < 0 || d > time.Minute {
		t.Errorf("NotBefore %v", c.NotBefore)
	}
	if want := c.NotBefore.AddDate(1, 0, 0); !c.NotAfter.Equal(want) {
		t.Errorf("NotAfter %v, want %v", c.NotAfter, want)
	}
	if c.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment || len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("usage %v %v", c.KeyUsage, c.ExtKeyUsage)
	}
	if !c.BasicConstraintsValid || c.IsCA || len(c.SubjectKeyId) != 0 || len(c.AuthorityKeyId) != 0 {
		t.Errorf("constraints %v CA %v SKI %x AKI %x", c.BasicConstraintsValid, c.IsCA, c.SubjectKeyId, c.AuthorityKeyId)
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&k.PublicKey) {
		t.Error("certificate and key do not match")
	}
	return cp.Bytes
}

// TestManualNoGeneration: DNS names never get a generated certificate,
// and neither does an IP whose files are half there.
func TestManualNoGeneration(t *testing.T) {
	dir := t.TempDir()
	if _, err := New(Config{Mode: ModeManual, Dir: dir, Hostname: "derp.example"}); err == nil {
		t.Error("DNS name without files accepted")
	}
	crt, _ := ManualFiles(dir, "192.0.2.7")
	os.WriteFile(crt, []byte("junk"), 0o644)
	if _, err := New(Config{Mode: ModeManual, Dir: dir, Hostname: "192.0.2.7"}); err == nil {
		t.Error("half-present files accepted")
	}
	if b, _ := os.ReadFile(crt); string(b) != "junk" {
		t.Error("existing file overwritten")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("files created: %v", ents)
	}
}

// TestManualChainNeverGrows hands out many copies with the meta
// certificate appended and checks that the stored chain is untouched.
func TestManualChainNeverGrows(t *testing.T) {
	dir := t.TempDir()
	p, err := New(Config{Mode: ModeManual, Dir: dir, Hostname: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	get := p.TLSConfig().GetCertificate
	for i := range 5 {
		c, err := get(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		c.Certificate = append(c.Certificate, []byte{byte(i)})
		if n := len(p.(*manualProvider).cert.Load().Certificate); n != 1 {
			t.Fatalf("stored chain has %d certificates after %d handshakes", n, i+1)
		}
	}
}

// FuzzDecodeEABKey: a key is accepted exactly when it is URL-safe
// unpadded or standard padded base64, and decodes to the same bytes.
func FuzzDecodeEABKey(f *testing.F) {
	for _, s := range []string{"", "a2V5", "a2V5==", "-_-_", "%%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := decodeEABKey(s)
		u, uerr := base64.RawURLEncoding.DecodeString(s)
		st, serr := base64.StdEncoding.DecodeString(s)
		switch {
		case uerr == nil:
			if err != nil || string(b) != string(u) {
				t.Fatalf("%q: %x %v, want %x", s, b, err, u)
			}
		case serr == nil:
			if err != nil || string(b) != string(st) {
				t.Fatalf("%q: %x %v, want %x", s, b, err, st)
			}
		default:
			if err == nil {
				t.Fatalf("%q accepted", s)
			}
		}
	})
}
