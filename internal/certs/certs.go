package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// Modes accepted by New.
const (
	ModeLetsEncrypt = "letsencrypt"
	ModeManual      = "manual"
)

// tailscaleHostname is the default -hostname; with it, ACME may issue for
// any of Tailscale's derpN names.
const tailscaleHostname = "derp.tailscale.com"

var tailscaleDERPName = regexp.MustCompile(`^derp([^.]*)\.tailscale\.com\.?$`)

// Config selects and configures a certificate provider.
type Config struct {
	Mode     string // ModeLetsEncrypt or ModeManual
	Dir      string // ACME cache, or directory of <hostname>.crt/.key
	Hostname string // the name certificates are for

	// DirectoryURL is the ACME directory; empty means Let's Encrypt
	// production.
	DirectoryURL string
	// ACMEHTTPClient, if non-nil, is used to talk to the ACME CA (tests
	// use it to trust a private CA).
	ACMEHTTPClient *http.Client
}

// Provider hands out certificates for the main TLS listener.
type Provider interface {
	// TLSConfig returns the server TLS configuration: certificates,
	// ALPN protocols and a TLS 1.2 minimum.
	TLSConfig() *tls.Config
	// HTTPHandler wraps the port-80 handler so that ACME HTTP-01
	// challenges are answered; fallback gets everything else.
	HTTPHandler(fallback http.Handler) http.Handler
}

// New returns the provider for cfg.Mode.
func New(cfg Config) (Provider, error) {
	if cfg.Dir == "" {
		return nil, errors.New("missing required --certdir flag")
	}
	switch cfg.Mode {
	case ModeLetsEncrypt:
		return newACME(cfg), nil
	case ModeManual:
		return newManual(cfg.Dir, cfg.Hostname)
	}
	return nil, fmt.Errorf("unsupport cert mode: %q", cfg.Mode)
}

// acmeProvider gets certificates from an ACME CA through autocert.
type acmeProvider struct {
	m *autocert.Manager
}

func newACME(cfg Config) *acmeProvider {
	m := &autocert.Manager{
		Prompt: autocert.AcceptTOS,
		Cache:  autocert.DirCache(cfg.Dir),
		Client: &acme.Client{DirectoryURL: cfg.DirectoryURL, HTTPClient: cfg.ACMEHTTPClient},
	}
	if cfg.Hostname == tailscaleHostname {
		m.HostPolicy = func(_ context.Context, host string) error {
			if tailscaleDERPName.MatchString(host) {
				return nil
			}
			return fmt.Errorf("certs: host %q not allowed", host)
		}
		m.Email = "security@tailscale.com"
	} else {
		m.HostPolicy = autocert.HostWhitelist(cfg.Hostname)
	}
	if m.Client.DirectoryURL == "" {
		m.Client.DirectoryURL = autocert.DefaultACMEDirectory
	}
	return &acmeProvider{m: m}
}

func (p *acmeProvider) TLSConfig() *tls.Config {
	c := p.m.TLSConfig() // offers h2, http/1.1 and acme-tls/1
	c.MinVersion = tls.VersionTLS12
	return c
}

func (p *acmeProvider) HTTPHandler(fallback http.Handler) http.Handler {
	return p.m.HTTPHandler(fallback)
}

// manualProvider serves one certificate loaded from disk at startup.
type manualProvider struct {
	hostname string
	cert     *tls.Certificate
}

// manualFileName keeps only characters safe in a file name.
func manualFileName(hostname string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return -1
	}, hostname)
}

// ManualFiles returns the certificate and key file names that manual mode
// reads for hostname: <dir>/<name>.crt and <dir>/<name>.key, where name is
// hostname without characters outside [A-Za-z0-9.-].
func ManualFiles(dir, hostname string) (crt, key string) {
	name := manualFileName(hostname)
	return filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
}

func newManual(dir, hostname string) (*manualProvider, error) {
	crt, keyFile := ManualFiles(dir, hostname)
	cert, err := tls.LoadX509KeyPair(crt, keyFile)
	if err != nil {
		return nil, fmt.Errorf("certs: loading %s: %w", crt, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("certs: parsing %s: %w", crt, err)
	}
	if err := leaf.VerifyHostname(hostname); err != nil {
		return nil, fmt.Errorf("certs: %s: %w", crt, err)
	}
	cert.Leaf = leaf
	return &manualProvider{hostname: hostname, cert: &cert}, nil
}

func (p *manualProvider) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"http/1.1"},
		GetCertificate: p.getCertificate,
	}
}

func (p *manualProvider) getCertificate(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if hi.ServerName != p.hostname {
		// Clients send no SNI for an IP literal; when the configured
		// host name is an IP, that is the expected case.
		// See docs/compat.md#derper-manual-ip-sni.
		if _, err := netip.ParseAddr(p.hostname); err != nil || hi.ServerName != "" {
			return nil, errors.New("cert mismatch with hostname")
		}
	}
	// A shallow copy, so appending the meta certificate to one
	// handshake's chain never touches the shared one.
	c := *p.cert
	return &c, nil
}

func (p *manualProvider) HTTPHandler(fallback http.Handler) http.Handler { return fallback }
