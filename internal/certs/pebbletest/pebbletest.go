// Package pebbletest runs the Pebble ACME test CA on loopback for
// end-to-end certificate tests.
package pebbletest

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

// Version pins the ACME test CA used by TestACMEWithPebble.
const Version = "v2.10.1"

// Pebble is a running Pebble ACME server.
type Pebble struct {
	DirectoryURL string         // ACME directory
	API          *http.Client   // trusts the API's certificate
	APICAFile    string         // PEM file of the CA of the API's certificate
	IssuedRoots  *x509.CertPool // root of the certificates Pebble issues
}

// Start builds Pebble (pinned to Version) from the module proxy, runs it
// on loopback with validation always succeeding, and stops it when t
// ends. It skips t in -short mode or when the module cannot be fetched.
func Start(t *testing.T) *Pebble {
	t.Helper()
	return StartWith(t, Options{})
}

// Options changes how StartWith configures Pebble.
type Options struct {
	// EABKeys, if not empty, makes external account binding mandatory
	// and lists the accepted key IDs with their base64url HMAC keys.
	EABKeys map[string]string
}

// StartWith is Start with options. Pebble always offers the "default"
// profile (90 days) and "shortlived" (6 days).
func StartWith(t *testing.T, opts Options) *Pebble {
	t.Helper()
	if testing.Short() {
		t.Skip("builds Pebble; skipped in -short mode")
	}
	gobin := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	mod := "github.com/letsencrypt/pebble/v2"
	out, err := exec.CommandContext(ctx, "go", "mod", "download", "-json", mod+"@"+Version).Output()
	if err != nil {
		t.Skipf("cannot fetch Pebble (offline?): %v", err)
	}
	var info struct{ Dir string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		t.Fatalf("go mod download: %v %s", err, out)
	}
	install := exec.CommandContext(ctx, "go", "install", mod+"/cmd/pebble@"+Version)
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
		"externalAccountBindingRequired": len(opts.EABKeys) > 0,
		"externalAccountMACKeys":         opts.EABKeys,
		"profiles": map[string]any{
			"default":    map[string]any{"description": "default", "validityPeriod": 90 * 24 * 3600},
			"shortlived": map[string]any{"description": "short-lived", "validityPeriod": 6 * 24 * 3600},
		},
		"retryAfter": map[string]int{"authz": 1, "order": 1},
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
	api := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: apiRoots}}, Timeout: 10 * time.Second}
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
	issued := x509.NewCertPool()
	if !issued.AppendCertsFromPEM(root) {
		t.Fatalf("bad Pebble root: %q", root)
	}
	dirURL := fmt.Sprintf("https://127.0.0.1:%d/dir", apiPort)
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
	return &Pebble{DirectoryURL: dirURL, API: api, APICAFile: filepath.Join(certDir, "pebble.minica.pem"), IssuedRoots: issued}
}
