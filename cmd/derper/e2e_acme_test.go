package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/internal/certs/pebbletest"
)

// TestE2EACME runs derper in letsencrypt mode against a local Pebble CA:
// the first handshake for the host name obtains a certificate, which is
// then served with the meta certificate appended.
func TestE2EACME(t *testing.T) {
	pb := pebbletest.Start(t)
	// ACME mode is chosen by port 443. Use it on a random address of
	// 127/8, which is still loopback; without the privilege, skip.
	ip := fmt.Sprintf("127.%d.%d.%d", rand.IntN(250)+1, rand.IntN(250)+1, rand.IntN(250)+1)
	addr := net.JoinHostPort(ip, "443")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	ln.Close()

	const host = "derp.example.test"
	certDir := t.TempDir()
	d := startDerper(t, []string{"SSL_CERT_FILE=" + pb.APICAFile, "SSL_CERT_DIR=/nonexistent"},
		"-a", addr, "-c", filepath.Join(t.TempDir(), "c.json"),
		"-certdir", certDir, "-hostname", host, "-acme-directory-url", pb.DirectoryURL,
		"-http-port", "-1", "-stun=false")

	for i := range 2 {
		dl := tls.Dialer{Config: &tls.Config{ServerName: host, RootCAs: pb.IssuedRoots, NextProtos: []string{"http/1.1"}}}
		ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
		c, err := dl.DialContext(ctx, "tcp", addr)
		cancel()
		if err != nil {
			t.Fatalf("handshake %d: %v\n%s", i, err, d.drain())
		}
		st := c.(*tls.Conn).ConnectionState()
		c.Close()
		chain := st.PeerCertificates
		if !strings.HasPrefix(chain[len(chain)-1].Subject.CommonName, derp.MetaCertCommonNamePrefix) {
			t.Errorf("meta certificate not appended")
		}
	}
	ents, _ := os.ReadDir(certDir)
	if len(ents) == 0 {
		t.Error("certificate not cached in -certdir")
	}

	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{ServerName: host, RootCAs: pb.IssuedRoots},
	}}
	resp, _ := httpGet(t, hc, "https://"+host+"/derp/probe")
	if resp.StatusCode != 200 {
		t.Errorf("probe over ACME TLS: %d", resp.StatusCode)
	}
	d.stop(t)

	// The certificate stage: announced at start, obtained once.
	lines := readLogUntil(t, d, nil, func(l []string) bool { return indexOf(l, "derper: certificate obtained for ") >= 0 })
	inOrder(t, lines, "derper: certificate: ACME (letsencrypt) for "+host, "derper: serving on", "derper: certificate obtained for "+host+" (ACME), valid until ")
	n := 0
	for _, l := range lines {
		if strings.Contains(l, "derper: certificate obtained for ") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("certificate obtained logged %d times, want once", n)
	}
}
