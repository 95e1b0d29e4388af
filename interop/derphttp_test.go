package interop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	ourderp "github.com/openderp/openderp/derp"
	ourhttp "github.com/openderp/openderp/derphttp"
	ourkey "github.com/openderp/openderp/key"
	tsderp "tailscale.com/derp"
	tshttp "tailscale.com/derp/derphttp"
	"tailscale.com/net/netmon"
	tskey "tailscale.com/types/key"
)

func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	c := sharedCert
	c.Certificate = append([][]byte(nil), c.Certificate...)
	return c, sharedPool
}

// makeCert returns a self-signed certificate for 127.0.0.1 and a pool
// that trusts it.
func makeCert() (tls.Certificate, *x509.CertPool, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "interop test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: leaf}, pool, nil
}

// httpServer serves h over plain HTTP or, with cert, TLS 1.3.
func httpServer(t *testing.T, h http.Handler, cert *tls.Certificate) string {
	srv := httptest.NewUnstartedServer(h)
	if cert != nil {
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv.URL + "/derp"
}

// Their derphttp client against our Handler: over HTTP, and over TLS 1.3
// with our meta certificate appended, where their client uses fast start.
func TestTheirHTTPClientOurHandler(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := map[bool]string{false: "http", true: "tls+metacert"}[useTLS]
		t.Run(name, func(t *testing.T) {
			s := ourderp.NewServer(ourkey.NewNode(), t.Logf)
			defer s.Close()
			var cert *tls.Certificate
			var pool *x509.CertPool
			if useTLS {
				c, p := testCert(t)
				cert, pool = ourhttp.AppendMetaCert(&c, s.MetaCert()), p
			}
			url := httpServer(t, ourhttp.Handler(s), cert)
			mk := func() *tshttp.Client {
				c, err := tshttp.NewClient(tskey.NewNode(), url, t.Logf, netmon.NewStatic())
				if err != nil {
					t.Fatal(err)
				}
				c.TLSConfig = &tls.Config{RootCAs: pool}
				t.Cleanup(func() { c.Close() })
				if err := c.Connect(context.Background()); err != nil {
					t.Fatal(err)
				}
				return c
			}
			a, b := mk(), mk()
			if got := raw(a.ServerPublicKey()); got != s.PublicKey().Raw32() {
				t.Fatal("their client learned the wrong server key")
			}
			waitRegistered(t, b)
			if err := a.Send(b.SelfPublicKey(), []byte("over http")); err != nil {
				t.Fatal(err)
			}
			for {
				m, err := b.Recv()
				if err != nil {
					t.Fatal(err)
				}
				if p, ok := m.(tsderp.ReceivedPacket); ok {
					if string(p.Data) != "over http" || p.Source != a.SelfPublicKey() {
						t.Fatalf("got %q from %v", p.Data, p.Source)
					}
					break
				}
			}
		})
	}
}

// waitRegistered receives until ServerInfo, which the server sends after
// registering the client.
func waitRegistered(t *testing.T, c *tshttp.Client) {
	t.Helper()
	for range 10 {
		m, err := c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := m.(tsderp.ServerInfoMessage); ok {
			return
		}
	}
	t.Fatal("no ServerInfo")
}

// Our derphttp client against their Handler, over HTTP and TLS.
func TestOurHTTPClientTheirHandler(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := map[bool]string{false: "http", true: "tls"}[useTLS]
		t.Run(name, func(t *testing.T) {
			s := tsderp.NewServer(tskey.NewNode(), t.Logf)
			defer s.Close()
			var cert *tls.Certificate
			var pool *x509.CertPool
			if useTLS {
				c, p := testCert(t)
				cert, pool = &c, p
			}
			url := httpServer(t, tshttp.Handler(s), cert)
			mk := func() *ourhttp.Client {
				c, err := ourhttp.NewClient(ourkey.NewNode(), url, t.Logf)
				if err != nil {
					t.Fatal(err)
				}
				c.TLSConfig = &tls.Config{RootCAs: pool}
				t.Cleanup(func() { c.Close() })
				return c
			}
			a, b := mk(), mk()
			for range 10 { // b's first message, ServerInfo, means it is registered
				m, err := b.Recv()
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := m.(ourderp.ServerInfoMessage); ok {
					break
				}
			}
			if err := a.Send(b.SelfPublicKey(), []byte("to their server")); err != nil {
				t.Fatal(err)
			}
			if a.ServerPublicKey() != ourkey.NodePublicFromRaw32(raw(s.PublicKey())) {
				t.Fatal("our client learned the wrong server key")
			}
			for {
				m, err := b.Recv()
				if err != nil {
					t.Fatal(err)
				}
				if p, ok := m.(ourderp.ReceivedPacket); ok {
					if string(p.Data) != "to their server" || p.Source != a.SelfPublicKey() {
						t.Fatalf("got %q from %v", p.Data, p.Source)
					}
					break
				}
			}
		})
	}
}
