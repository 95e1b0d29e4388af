package certs

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/openderp/openderp/derpmap"
)

// manualProvider serves one certificate loaded from disk, and swaps in a
// new one when Reload finds a good pair in the files.
type manualProvider struct {
	hostname     string
	ipHost       bool // hostname is an IP literal: no SNI check
	crt, keyFile string
	logf         func(string, ...any)

	cert atomic.Pointer[tls.Certificate] // never nil; Leaf set
}

// A Reloader is a Provider that can re-read its certificate without a
// restart. The manual mode provider is one.
type Reloader interface {
	// Reload reads the certificate files again and, if they hold a good
	// pair (readable, key matching, valid for the host name and, unlike
	// at startup, not expired or not yet valid), serves it to new TLS
	// connections. On error the certificate in use stays. Established
	// connections are never affected.
	Reload() error
	// Leaf returns the certificate being served.
	Leaf() *x509.Certificate
	// Files returns the certificate and key file that Reload reads.
	Files() (crt, key string)
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

// newManual loads <hostname>.crt and .key from cfg.Dir. For an IP host
// name with neither file present, it first generates a self-signed
// certificate there; and for an IP host name it logs the DERP map node
// that pins the certificate.
func newManual(cfg *Config) (*manualProvider, error) {
	hostname := cfg.Hostname
	ip, ipErr := netip.ParseAddr(hostname)
	isIP := ipErr == nil
	crt, keyFile := ManualFiles(cfg.Dir, hostname)
	if isIP && missing(crt) && missing(keyFile) {
		if err := writeSelfSigned(crt, keyFile, ip, hostname); err != nil {
			return nil, fmt.Errorf("certs: generating a self-signed certificate for %s: %w", hostname, err)
		}
		cfg.logf("derper: generated a self-signed certificate for %s in %s and %s", hostname, crt, keyFile)
	}
	cert, err := loadManual(crt, keyFile, hostname, time.Time{})
	if err != nil {
		return nil, err
	}
	p := &manualProvider{hostname: hostname, ipHost: isIP, crt: crt, keyFile: keyFile, logf: cfg.logf}
	p.cert.Store(cert)
	p.logPin()
	return p, nil
}

// loadManual loads and checks a certificate pair. A non-zero now also
// rejects a certificate that is not valid at that time; startup does not
// check, as the reference does not.
func loadManual(crt, keyFile, hostname string, now time.Time) (*tls.Certificate, error) {
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
	if !now.IsZero() && (now.After(leaf.NotAfter) || now.Before(leaf.NotBefore)) {
		return nil, fmt.Errorf("certs: %s: %w", crt, &ExpiredError{NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter})
	}
	cert.Leaf = leaf
	return &cert, nil
}

// ExpiredError reports a certificate used outside its validity period.
type ExpiredError struct {
	NotBefore, NotAfter time.Time
}

func (e *ExpiredError) Error() string {
	return fmt.Sprintf("certificate valid only from %s to %s", e.NotBefore.UTC().Format(time.RFC3339), e.NotAfter.UTC().Format(time.RFC3339))
}

// logPin logs, for an IP host name, the DERP map node that pins the
// certificate being served.
func (p *manualProvider) logPin() {
	if !p.ipHost {
		return
	}
	// The wording is today's derper's, "self-signed" even for a
	// CA-issued file, so that log readers find the same lines.
	node, _ := json.Marshal(struct {
		Name     string
		RegionID int
		HostName string
		CertName string
	}{"custom", 900, p.hostname, derpmap.CertPin(p.cert.Load().Certificate[0])})
	p.logf("Using self-signed certificate for IP address %q. Configure it in DERPMap using: (https://tailscale.com/s/custom-derp)\n  %s", p.hostname, node)
}

// Reload implements Reloader. For an IP host name a new certificate
// means a new pin, which is logged again.
func (p *manualProvider) Reload() error {
	cert, err := loadManual(p.crt, p.keyFile, p.hostname, time.Now())
	if err != nil {
		return err
	}
	p.cert.Store(cert)
	p.logPin()
	return nil
}

// Leaf implements Reloader.
func (p *manualProvider) Leaf() *x509.Certificate { return p.cert.Load().Leaf }

// Files implements Reloader.
func (p *manualProvider) Files() (crt, key string) { return p.crt, p.keyFile }

func missing(path string) bool {
	_, err := os.Stat(path)
	return errors.Is(err, fs.ErrNotExist)
}

func (p *manualProvider) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"http/1.1"},
		GetCertificate: p.getCertificate,
	}
}

func (p *manualProvider) getCertificate(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
	// Clients send no SNI for an IP literal, and some send an SNI of
	// their own choosing; with an IP host name no check is made at all.
	// See docs/compat.md#derper-manual-ip-sni.
	if !p.ipHost && hi.ServerName != p.hostname {
		return nil, fmt.Errorf("cert mismatch with hostname: %q", hi.ServerName)
	}
	// A copy whose chain has no spare capacity, so appending the meta
	// certificate for one handshake never touches the shared one.
	c := *p.cert.Load()
	c.Certificate = c.Certificate[:len(c.Certificate):len(c.Certificate)]
	return &c, nil
}

func (p *manualProvider) HTTPHandler(fallback http.Handler) http.Handler { return fallback }
