package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/internal/certs/pebbletest"
)

// logBuf collects log lines from concurrent goroutines.
type logBuf struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuf) logf(f string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(f, a...))
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// serveTLSForTest accepts TLS connections on loopback with cfg and
// completes their handshakes; it returns the address.
func serveTLSForTest(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
				defer cancel()
				c.(*tls.Conn).HandshakeContext(ctx)
			}()
		}
	}()
	return ln.Addr().String()
}

func handshakeChain(t *testing.T, addr string, cfg *tls.Config) []*x509.Certificate {
	t.Helper()
	d := tls.Dialer{Config: cfg}
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates
}

// TestIPCertsWithPebble: IP-only mode gets a short-lived certificate for
// the connection's local address on the first handshake (no SNI), serves
// it again without growing the chain, stores it, and a new provider
// loads it from disk instead of ordering again.
func TestIPCertsWithPebble(t *testing.T) {
	pb := pebbletest.Start(t)
	dir := t.TempDir()
	var logs logBuf
	cfg := Config{Mode: ModeLetsEncrypt, Dir: dir, Hostname: "127.0.0.1", IPCerts: true,
		DirectoryURL: pb.DirectoryURL, ACMEHTTPClient: pb.API, Email: "ops@example.com", Logf: logs.logf}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tcfg := p.TLSConfig()
	if strings.Join(tcfg.NextProtos, ",") != "http/1.1" {
		t.Errorf("ALPN %v", tcfg.NextProtos)
	}
	meta := writeTestCert(t, t.TempDir(), "meta", "derpkey00")
	tcfg.GetCertificate = derphttp.GetCertificateWithMetaCert(tcfg.GetCertificate, meta)
	addr := serveTLSForTest(t, tcfg)

	client := &tls.Config{ServerName: "127.0.0.1", RootCAs: pb.IssuedRoots} // no SNI goes to an IP
	defer func() {
		if t.Failed() {
			t.Logf("provider logs:\n%s", logs.String())
		}
	}()
	var first []*x509.Certificate
	for i := range 3 {
		chain := handshakeChain(t, addr, client)
		leaf := chain[0]
		if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) || len(leaf.DNSNames) != 0 {
			t.Fatalf("leaf for %v %v", leaf.IPAddresses, leaf.DNSNames)
		}
		if life := leaf.NotAfter.Sub(leaf.NotBefore); life > 7*24*time.Hour {
			t.Errorf("lifetime %v: not the shortlived profile", life)
		}
		if chain[len(chain)-1].Subject.CommonName != "derpkey00" {
			t.Error("meta certificate not last")
		}
		if i == 0 {
			first = chain
		} else if len(chain) != len(first) || leaf.SerialNumber.Cmp(first[0].SerialNumber) != 0 {
			t.Errorf("handshake %d: chain %d (first %d), serial changed %v", i, len(chain), len(first), leaf.SerialNumber.Cmp(first[0].SerialNumber) != 0)
		}
	}
	if !strings.Contains(logs.String(), "derper: acme: got cert for 127.0.0.1 (expires ") ||
		!strings.Contains(logs.String(), `{"Name":"custom","RegionID":900,"HostName":"127.0.0.1"}`) {
		t.Errorf("logs: %s", logs.String())
	}
	for name, mode := range map[string]os.FileMode{"acme-account.key": 0o600, "127.0.0.1.crt": 0o644, "127.0.0.1.key": 0o600} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode() != mode {
			t.Errorf("%s: %v %v", name, fi, err)
		}
	}

	// A restart serves the cached certificate.
	var logs2 logBuf
	cfg.Logf = logs2.logf
	p2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr2 := serveTLSForTest(t, p2.TLSConfig())
	if chain := handshakeChain(t, addr2, client); chain[0].SerialNumber.Cmp(first[0].SerialNumber) != 0 {
		t.Error("restart ordered a new certificate instead of loading the cache")
	}
	if !strings.Contains(logs2.String(), "derper: acme: loaded cached cert for 127.0.0.1 (expires ") {
		t.Errorf("logs after restart: %s", logs2.String())
	}
}

// TestGCPWithPebbleEAB runs gcp mode (external account binding required)
// against Pebble standing in for Google's CA.
func TestGCPWithPebbleEAB(t *testing.T) {
	hmacKey := base64.RawURLEncoding.EncodeToString([]byte("an HMAC key of thirty-two bytes!"))
	pb := pebbletest.StartWith(t, pebbletest.Options{EABKeys: map[string]string{"kid-1": hmacKey}})
	const host = "derp.example.test"
	mk := func(kid string) *tls.Config {
		p, err := New(Config{Mode: ModeGCP, Dir: t.TempDir(), Hostname: host, DirectoryURL: pb.DirectoryURL, ACMEHTTPClient: pb.API,
			Email: "ops@example.com", EABKeyID: kid, EABKey: hmacKey})
		if err != nil {
			t.Fatal(err)
		}
		return p.TLSConfig()
	}
	addr := serveTLSForTest(t, mk("kid-1"))
	chain := handshakeChain(t, addr, &tls.Config{ServerName: host, RootCAs: pb.IssuedRoots, NextProtos: []string{"http/1.1"}})
	if err := chain[0].VerifyHostname(host); err != nil {
		t.Error(err)
	}
	// An unknown key ID is refused by the CA, so no certificate.
	bad := serveTLSForTest(t, mk("kid-unknown"))
	d := tls.Dialer{Config: &tls.Config{ServerName: host, RootCAs: pb.IssuedRoots}}
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	if c, err := d.DialContext(ctx, "tcp", bad); err == nil {
		c.Close()
		t.Error("certificate issued without a valid external account binding")
	}
}

// fakeConn gives a ClientHelloInfo a local address.
type fakeConn struct {
	net.Conn
	local net.Addr
}

func (c fakeConn) LocalAddr() net.Addr { return c.local }

func helloFor(local, sni string) *tls.ClientHelloInfo {
	return &tls.ClientHelloInfo{ServerName: sni, Conn: fakeConn{local: net.TCPAddrFromAddrPort(netip.MustParseAddrPort(local))}}
}

// TestIPCertRefusals checks the SNI rules and the failure backoff without
// a CA: the directory URL points at a closed port.
func TestIPCertRefusals(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String() + "/dir"
	ln.Close()
	var logs logBuf
	p, err := newIPCertProvider(Config{Mode: ModeLetsEncrypt, Dir: t.TempDir(), Hostname: "192.0.2.1", IPCerts: true, DirectoryURL: dead, Logf: logs.logf}, true)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		local, sni, err string
	}{
		{"192.0.2.1:443", "derp.example", `no certificate for hostname "derp.example"; this server only serves IP address certificates`},
		{"192.0.2.1:443", "192.0.2.9", "requested certificate for IP 192.0.2.9 does not match the connection's IP address"},
		{"192.0.2.1:443", "", "cert issuance for 192.0.2.1: "},
		{"[::ffff:192.0.2.1]:443", "", "cert issuance for 192.0.2.1 failed recently; next attempt no earlier than "},
	}
	for _, tt := range tests {
		_, err := p.getCertificate(helloFor(tt.local, tt.sni))
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s %q: %v, want %q", tt.local, tt.sni, err, tt.err)
		}
	}
	if !strings.Contains(logs.String(), "derper: acme: getting cert for 192.0.2.1: ") || !strings.Contains(logs.String(), "(next attempt in 1m0s)") {
		t.Errorf("logs: %s", logs.String())
	}
}

// TestIPCertChallengeHandler: known tokens are answered, unknown ones
// fall through to autocert (DNS host name) or get 404 (IP only).
func TestIPCertChallengeHandler(t *testing.T) {
	fallback := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("fallback")) })
	for _, ipOnly := range []bool{true, false} {
		p, err := newIPCertProvider(Config{Mode: ModeLetsEncrypt, Dir: t.TempDir(), Hostname: "derp.example", IPCerts: true}, ipOnly)
		if err != nil {
			t.Fatal(err)
		}
		p.tokens["tok"] = "tok.thumb"
		h := p.HTTPHandler(fallback)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "http://192.0.2.1/.well-known/acme-challenge/tok", nil))
		if rec.Code != 200 || rec.Body.String() != "tok.thumb" || rec.Header().Get("Content-Type") != "text/plain" {
			t.Errorf("ipOnly=%v known token: %d %q", ipOnly, rec.Code, rec.Body)
		}
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "http://192.0.2.1/.well-known/acme-challenge/other", nil))
		if ipOnly && rec.Code != 404 || !ipOnly && rec.Code == 200 && rec.Body.String() == "tok.thumb" {
			t.Errorf("ipOnly=%v unknown token: %d %q", ipOnly, rec.Code, rec.Body)
		}
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "http://192.0.2.1/generate_204", nil))
		if rec.Body.String() != "fallback" {
			t.Errorf("ipOnly=%v other path: %q", ipOnly, rec.Body)
		}
	}
}

// TestIPCertCacheSkipsSelfSigned: a manual-mode self-signed file of the
// same name is not served as an ACME certificate.
func TestIPCertCacheSkipsSelfSigned(t *testing.T) {
	dir := t.TempDir()
	if _, err := New(Config{Mode: ModeManual, Dir: dir, Hostname: "192.0.2.1"}); err != nil {
		t.Fatal(err)
	}
	p, err := newIPCertProvider(Config{Mode: ModeLetsEncrypt, Dir: dir, Hostname: "192.0.2.1", IPCerts: true}, true)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	c := p.loadCached(netip.MustParseAddr("192.0.2.1"))
	p.mu.Unlock()
	if c != nil {
		t.Error("self-signed certificate taken from the cache")
	}
}
