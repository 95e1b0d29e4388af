package certs

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// Modes accepted by New.
const (
	ModeLetsEncrypt = "letsencrypt"
	ModeGCP         = "gcp"
	ModeManual      = "manual"
)

// GCPDirectory is the ACME directory of Google Trust Services, used by
// ModeGCP unless Config.DirectoryURL names another.
const GCPDirectory = "https://dv.acme-v02.api.pki.goog/directory"

// tailscaleHostname is the default -hostname; with it, ACME may issue for
// any of Tailscale's derpN names.
const tailscaleHostname = "derp.tailscale.com"

var tailscaleDERPName = regexp.MustCompile(`^derp([^.]*)\.tailscale\.com\.?$`)

// Config selects and configures a certificate provider.
type Config struct {
	Mode     string // ModeLetsEncrypt, ModeGCP or ModeManual
	Dir      string // ACME cache, or directory of <hostname>.crt/.key
	Hostname string // the name certificates are for; may be an IP

	// DirectoryURL is the ACME directory; empty means Let's Encrypt
	// production (ModeLetsEncrypt) or GCPDirectory (ModeGCP).
	DirectoryURL string
	// ACMEHTTPClient, if non-nil, is used to talk to the ACME CA (tests
	// use it to trust a private CA).
	ACMEHTTPClient *http.Client

	// Email is the ACME account contact; required by ModeGCP.
	Email string
	// EABKeyID and EABKey (base64) bind the ACME account to an account
	// at the CA; both are required by ModeGCP.
	EABKeyID, EABKey string

	// IPCerts, with ModeLetsEncrypt, serves certificates for the IP
	// address each connection arrived on (-acme-ip-certs).
	IPCerts bool

	// Logf receives notices such as the DERP map entry of a pinned
	// certificate; nil discards them.
	Logf func(format string, args ...any)
}

func (c *Config) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
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

// New returns the provider for cfg.Mode. Its errors are configuration
// errors, worded after the flags of derper.
func New(cfg Config) (Provider, error) {
	if cfg.Dir == "" {
		return nil, errors.New("missing required --certdir flag")
	}
	if cfg.IPCerts && cfg.Mode != ModeLetsEncrypt {
		return nil, errors.New("--acme-ip-certs requires --certmode=letsencrypt")
	}
	_, ipErr := netip.ParseAddr(cfg.Hostname)
	isIP := ipErr == nil
	switch cfg.Mode {
	case ModeLetsEncrypt:
		if isIP && !cfg.IPCerts {
			return nil, errors.New("--hostname is an IP address; use --certmode=manual for a self-signed cert, or set --acme-ip-certs to get LetsEncrypt IP address certs")
		}
		if cfg.IPCerts {
			return newIPCertProvider(cfg, isIP)
		}
		return newACME(cfg, nil)
	case ModeGCP:
		if cfg.EABKeyID == "" || cfg.EABKey == "" {
			return nil, errors.New("--certmode=gcp requires --acme-eab-kid and --acme-eab-key flags")
		}
		if cfg.Email == "" {
			return nil, errors.New("--certmode=gcp requires --acme-email flag")
		}
		if isIP {
			return nil, errors.New("--certmode=gcp requires --hostname to be a DNS name, not an IP address")
		}
		key, err := decodeEABKey(cfg.EABKey)
		if err != nil {
			return nil, err
		}
		if cfg.DirectoryURL == "" || cfg.DirectoryURL == autocert.DefaultACMEDirectory {
			cfg.DirectoryURL = GCPDirectory
		}
		return newACME(cfg, &acme.ExternalAccountBinding{KID: cfg.EABKeyID, Key: key})
	case ModeManual:
		return newManual(&cfg)
	}
	return nil, fmt.Errorf("unsupport cert mode: %q", cfg.Mode)
}

// decodeEABKey accepts the HMAC key in URL-safe unpadded base64, as CAs
// hand it out, or in standard padded base64.
func decodeEABKey(s string) ([]byte, error) {
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return nil, errors.New("invalid base64 encoding for EAB key")
}

// acmeProvider gets certificates from an ACME CA through autocert.
type acmeProvider struct {
	m *autocert.Manager
}

func newACME(cfg Config, eab *acme.ExternalAccountBinding) (*acmeProvider, error) {
	m := &autocert.Manager{
		Prompt:                 autocert.AcceptTOS,
		Cache:                  autocert.DirCache(cfg.Dir),
		Client:                 &acme.Client{DirectoryURL: cfg.DirectoryURL, HTTPClient: cfg.ACMEHTTPClient},
		Email:                  cfg.Email,
		ExternalAccountBinding: eab,
	}
	if cfg.Hostname == tailscaleHostname {
		m.HostPolicy = func(_ context.Context, host string) error {
			if tailscaleDERPName.MatchString(host) {
				return nil
			}
			return fmt.Errorf("certs: host %q not allowed", host)
		}
		if m.Email == "" {
			m.Email = "security@tailscale.com"
		}
	} else {
		m.HostPolicy = autocert.HostWhitelist(cfg.Hostname)
	}
	if m.Client.DirectoryURL == "" {
		m.Client.DirectoryURL = autocert.DefaultACMEDirectory
	}
	return &acmeProvider{m: m}, nil
}

func (p *acmeProvider) TLSConfig() *tls.Config {
	c := p.m.TLSConfig() // offers h2, http/1.1 and acme-tls/1
	c.MinVersion = tls.VersionTLS12
	return c
}

func (p *acmeProvider) HTTPHandler(fallback http.Handler) http.Handler {
	return p.m.HTTPHandler(fallback)
}
