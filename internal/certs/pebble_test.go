package certs

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pebbleVersion pins the ACME test CA used by TestACMEWithPebble.
const pebbleVersion = "v2.10.1"

// startPebble builds and starts Pebble on loopback, and returns its
// directory URL, an HTTP client trusting its API certificate, and the
// pool holding the root that signs the certificates it issues.
func startPebble(t *testing.T) (dirURL string, api *http.Client, issued *x509.CertPool) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds Pebble; skipped in -short mode")
	}
	gobin := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	mod := "github.com/letsencrypt/pebble/v2"
	out, err := exec.CommandContext(ctx, "go", "mod", "download", "-json", mod+"@"+pebbleVersion).Output()
	if err != nil {
		t.Skipf("cannot fetch Pebble (offline?): %v", err)
	}
	var info struct{ Dir string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		t.Fatalf("go mod download: %v %s", err, out)
	}
	install := exec.CommandContext(ctx, "go", "install", mod+"/cmd/pebble@"+pebbleVersion)
	install.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=-buildvcs=false")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("building Pebble: %v\n%s", err, out)
	}

	port := func() int {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port
	}
	apiPort, mgmtPort := port(), port()
	certDir := filepath.Join(info.Dir, "test", "certs")
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  fmt.Sprintf("127.0.0.1:%d", apiPort),
		"managementListenAddress":        fmt.Sprintf("127.0.0.1:%d", mgmtPort),
		"certificate":                    filepath.Join(certDir, "localhost", "cert.pem"),
		"privateKey":                     filepath.Join(certDir, "localhost", "key.pem"),
		"httpPort":                       port(),
		"tlsPort":                        port(),
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
	}}
	cfgPath := filepath.Join(t.TempDir(), "pebble.json")
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(gobin, "pebble"), "-config", cfgPath, "-dnsserver", "127.0.0.1:1")
	// Validation always succeeds, so no DNS or challenge server is needed.
	cmd.Env = append(os.Environ(), "PEBBLE_VA_ALWAYS_VALID=1", "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			if !sent && strings.Contains(sc.Text(), "ACME directory available") {
				ready <- true
				sent = true
			}
		}
		if !sent {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("Pebble exited before serving")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Pebble did not start")
	}

	ca, err := os.ReadFile(filepath.Join(certDir, "pebble.minica.pem"))
	if err != nil {
		t.Fatal(err)
	}
	apiRoots := x509.NewCertPool()
	apiRoots.AppendCertsFromPEM(ca)
	api = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: apiRoots}}, Timeout: 10 * time.Second}
	// Pebble logs its addresses before it binds them, so poll (bounded)
	// until the management interface answers.
	var resp *http.Response
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err = api.Get(fmt.Sprintf("https://127.0.0.1:%d/roots/0", mgmtPort))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	root, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	issued = x509.NewCertPool()
	if !issued.AppendCertsFromPEM(root) {
		t.Fatalf("bad Pebble root: %q", root)
	}
	dirURL = fmt.Sprintf("https://127.0.0.1:%d/dir", apiPort)
	for {
		resp, err := api.Get(dirURL)
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return dirURL, api, issued
}

// TestACMEWithPebble obtains a certificate end to end from a local ACME
// CA during a TLS handshake, then serves it again from the cache.
func TestACMEWithPebble(t *testing.T) {
	dirURL, api, roots := startPebble(t)
	const host = "derp.example.test"
	cacheDir := t.TempDir()
	p, err := New(Config{Mode: ModeLetsEncrypt, Dir: cacheDir, Hostname: host, DirectoryURL: dirURL, ACMEHTTPClient: api})
	if err != nil {
		t.Fatal(err)
	}
	cfg := p.TLSConfig()
	meta := writeSelfSigned(t, t.TempDir(), "meta", "derpkey00")
	cfg.GetCertificate = WithMetaCert(cfg.GetCertificate, meta)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.(*tls.Conn).HandshakeContext(t.Context())
			}()
		}
	}()

	for i := range 2 {
		d := tls.Dialer{Config: &tls.Config{ServerName: host, RootCAs: roots, NextProtos: []string{"http/1.1"}}}
		ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
		c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
		cancel()
		if err != nil {
			t.Fatalf("handshake %d: %v", i, err)
		}
		st := c.(*tls.Conn).ConnectionState()
		c.Close()
		chain := st.PeerCertificates
		if chain[0].Subject.CommonName != host && (len(chain[0].DNSNames) == 0 || chain[0].DNSNames[0] != host) {
			t.Errorf("leaf for %v", chain[0].DNSNames)
		}
		if last := chain[len(chain)-1]; last.Subject.CommonName != "derpkey00" {
			t.Errorf("meta cert not last: %q", last.Subject.CommonName)
		}
	}
	if ents, _ := os.ReadDir(cacheDir); len(ents) == 0 {
		t.Error("nothing cached in the cert dir")
	}
	// A name outside the host policy is refused without asking the CA.
	d := tls.Dialer{Config: &tls.Config{ServerName: "other.example.test", InsecureSkipVerify: true}}
	if c, err := d.DialContext(t.Context(), "tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Error("host outside the policy accepted")
	}
}
