package certs

import (
	"context"
	"crypto/tls"
	"os"
	"testing"
	"time"

	"github.com/openderp/openderp/derphttp"

	"github.com/openderp/openderp/internal/certs/pebbletest"
)

// TestACMEWithPebble obtains a certificate end to end from a local ACME
// CA during a TLS handshake, then serves it again from the cache.
func TestACMEWithPebble(t *testing.T) {
	pb := pebbletest.Start(t)
	dirURL, api, roots := pb.DirectoryURL, pb.API, pb.IssuedRoots
	const host = "derp.example.test"
	cacheDir := t.TempDir()
	p, err := New(Config{Mode: ModeLetsEncrypt, Dir: cacheDir, Hostname: host, DirectoryURL: dirURL, ACMEHTTPClient: api})
	if err != nil {
		t.Fatal(err)
	}
	cfg := p.TLSConfig()
	meta := writeTestCert(t, t.TempDir(), "meta", "derpkey00")
	cfg.GetCertificate = derphttp.GetCertificateWithMetaCert(cfg.GetCertificate, meta)
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

	chainLen := 0
	for i := range 3 { // the served chain must never grow (v1.76.3 bug, §11.1)
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
		if i > 0 && len(chain) != chainLen {
			t.Errorf("handshake %d: chain of %d certificates, first had %d", i, len(chain), chainLen)
		}
		chainLen = len(chain)
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
