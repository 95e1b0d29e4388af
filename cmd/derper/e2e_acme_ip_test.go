package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openderp/openderp/internal/certs/pebbletest"
)

// loopback443 returns a random 127/8 address with port 443 free, or
// skips the test without the privilege to bind it.
func loopback443(t *testing.T) (ip, addr string) {
	t.Helper()
	ip = fmt.Sprintf("127.%d.%d.%d", rand.IntN(250)+1, rand.IntN(250)+1, rand.IntN(250)+1)
	addr = net.JoinHostPort(ip, "443")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	ln.Close()
	return ip, addr
}

// TestE2EACMEIPCerts runs derper with an IP host name and -acme-ip-certs
// against Pebble: the first handshake, without SNI, gets a short-lived
// certificate for the connection's local address.
func TestE2EACMEIPCerts(t *testing.T) {
	pb := pebbletest.Start(t)
	ip, addr := loopback443(t)
	p80 := freePort(t, "tcp")
	d := startDerper(t, []string{"SSL_CERT_FILE=" + pb.APICAFile, "SSL_CERT_DIR=/nonexistent"},
		"-a", addr, "-c", filepath.Join(t.TempDir(), "c.json"), "-certdir", t.TempDir(),
		"-hostname", ip, "-acme-ip-certs", "-acme-email", "ops@example.com", "-acme-directory-url", pb.DirectoryURL,
		"-http-port", fmt.Sprint(p80), "-stun=false")

	// Port 80: challenge paths belong to the IP manager (unknown tokens
	// 404 in IP-only mode); the captive-portal check still works.
	noRedirect := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	p80base := fmt.Sprintf("http://%s", net.JoinHostPort(ip, fmt.Sprint(p80)))
	if resp, _ := httpGet(t, noRedirect, p80base+"/.well-known/acme-challenge/unknown-token"); resp.StatusCode != 404 {
		t.Errorf("unknown challenge token: %d", resp.StatusCode)
	}
	if resp, _ := httpGet(t, noRedirect, p80base+"/generate_204"); resp.StatusCode != 204 {
		t.Errorf("port 80 generate_204: %d", resp.StatusCode)
	}
	dl := tls.Dialer{Config: &tls.Config{ServerName: ip, RootCAs: pb.IssuedRoots}}
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	c, err := dl.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("handshake: %v\n%s", err, d.drain())
	}
	leaf := c.(*tls.Conn).ConnectionState().PeerCertificates[0]
	c.Close()
	if len(leaf.IPAddresses) != 1 || leaf.IPAddresses[0].String() != ip || leaf.NotAfter.Sub(leaf.NotBefore) > 7*24*time.Hour {
		t.Errorf("leaf for %v, valid %v", leaf.IPAddresses, leaf.NotAfter.Sub(leaf.NotBefore))
	}
	logs := d.drain()
	if !strings.Contains(logs, "derper: acme: got cert for "+ip) {
		t.Errorf("logs:\n%s", logs)
	}
	d.stop(t)
}

// TestE2EGCPMode runs -certmode=gcp with external account binding
// against Pebble standing in for Google's CA.
func TestE2EGCPMode(t *testing.T) {
	hmacKey := base64.RawURLEncoding.EncodeToString([]byte("an HMAC key of thirty-two bytes!"))
	pb := pebbletest.StartWith(t, pebbletest.Options{EABKeys: map[string]string{"kid-1": hmacKey}})
	_, addr := loopback443(t)
	const host = "derp.example.test"
	d := startDerper(t, []string{"SSL_CERT_FILE=" + pb.APICAFile, "SSL_CERT_DIR=/nonexistent"},
		"-a", addr, "-c", filepath.Join(t.TempDir(), "c.json"), "-certdir", t.TempDir(), "-certmode", "gcp",
		"-hostname", host, "-acme-email", "ops@example.com", "-acme-eab-kid", "kid-1", "-acme-eab-key", hmacKey,
		"-acme-directory-url", pb.DirectoryURL, "-http-port", "-1", "-stun=false")
	dl := tls.Dialer{Config: &tls.Config{ServerName: host, RootCAs: pb.IssuedRoots, NextProtos: []string{"http/1.1"}}}
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	c, err := dl.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("handshake: %v\n%s", err, d.drain())
	}
	c.Close()
	d.stop(t)
}
