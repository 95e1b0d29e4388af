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

	"github.com/openderp/openderp/derpmap"
)

// manualProvider serves one certificate loaded from disk at startup.
type manualProvider struct {
	hostname string
	ipHost   bool // hostname is an IP literal: no SNI check
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
	}
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
	if isIP {
		// The wording is today's derper's, "self-signed" even for a
		// CA-issued file, so that log readers find the same lines.
		node, _ := json.Marshal(struct {
			Name     string
			RegionID int
			HostName string
			CertName string
		}{"custom", 900, hostname, derpmap.CertPin(cert.Certificate[0])})
		cfg.logf("Using self-signed certificate for IP address %q. Configure it in DERPMap using: (https://tailscale.com/s/custom-derp)\n  %s", hostname, node)
	}
	return &manualProvider{hostname: hostname, ipHost: isIP, cert: &cert}, nil
}

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
	c := *p.cert
	c.Certificate = c.Certificate[:len(c.Certificate):len(c.Certificate)]
	return &c, nil
}

func (p *manualProvider) HTTPHandler(fallback http.Handler) http.Handler { return fallback }
