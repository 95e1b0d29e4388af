package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/openderp/openderp/internal/certs"
)

// Startup stage lines: one line per stage, each with the attribute
// "stage" so that JSON readers can pick them out. The messages are
// self-contained for the text format, which prints no attributes.
const (
	stageListening   = "listening"
	stageCertificate = "certificate"
	stageMesh        = "mesh"
	stageReady       = "ready"
)

// logStage logs a startup stage line.
func logStage(l *slog.Logger, stage, msg string, attrs ...any) {
	l.Info(msg, append([]any{"stage", stage}, attrs...)...)
}

// logListening logs a listener that is open, with the address it got.
func logListening(l *slog.Logger, ln net.Listener, what string) {
	a := ln.Addr().String()
	logStage(l, stageListening, fmt.Sprintf("derper: listening on %s (%s)", a, what), "addr", a, "listener", what)
}

// certNames lists the names and addresses a certificate covers.
func certNames(c *x509.Certificate) []string {
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = append(names, c.Subject.CommonName)
	}
	return names
}

// logCertificate logs where the certificate comes from once the
// provider is set up: for manual mode the file, names and expiry, for
// ACME what will happen and what it needs.
func logCertificate(l *slog.Logger, o *options, p certs.Provider) {
	if r, ok := p.(certs.Reloader); ok {
		crt, _ := r.Files()
		leaf := r.Leaf()
		until := leaf.NotAfter.UTC().Format(time.RFC3339)
		logStage(l, stageCertificate, fmt.Sprintf("derper: certificate loaded from %s for %s, valid until %s", crt, strings.Join(certNames(leaf), ", "), until),
			"file", crt, "names", certNames(leaf), "not_after", until)
		return
	}
	if o.acmeIPCerts {
		logStage(l, stageCertificate, fmt.Sprintf("derper: certificate: ACME IP address certificates from %s, obtained per address at the first TLS connection to it; port 80 must be reachable from the CA", o.acmeDirectoryURL),
			"mode", o.certMode, "directory", o.acmeDirectoryURL)
		return
	}
	logStage(l, stageCertificate, fmt.Sprintf("derper: certificate: ACME (%s) for %s, obtained at the first TLS connection and renewed automatically; the CA must reach %s on port 443 or 80", o.certMode, o.hostname, o.hostname),
		"mode", o.certMode, "hostname", o.hostname)
}

// certHint adds to a certificate set-up error what the operator can do
// about it.
func certHint(err error, o *options) error {
	crt, keyFile := certs.ManualFiles(o.certDir, o.hostname)
	var hostErr x509.HostnameError
	var hint string
	switch {
	case o.certMode != certs.ModeManual:
		return err
	case errors.Is(err, fs.ErrNotExist):
		hint = fmt.Sprintf("manual mode reads %s and %s: the -hostname %q, keeping only letters, digits, '.' and '-', plus .crt and .key, in -certdir; put the certificate chain and its key there under those names", crt, keyFile, o.hostname)
		if _, ipErr := netip.ParseAddr(o.hostname); ipErr == nil {
			hint += ", or remove both to get a generated self-signed pair"
		}
	case errors.As(err, &hostErr):
		hint = fmt.Sprintf("the certificate in %s does not cover -hostname %q (it covers %s); set -hostname to one of those names, or install a certificate for %q", crt, o.hostname, strings.Join(certNames(hostErr.Certificate), ", "), o.hostname)
	case strings.Contains(err.Error(), "private key does not match public key"):
		hint = fmt.Sprintf("%s is not the key of the certificate in %s; install the matching pair", keyFile, crt)
	default:
		return err
	}
	return fmt.Errorf("%w; fix: %s", err, hint)
}

// acmeProblemInterval spaces out the lines about ACME failures: clients
// retry, and each try would fail the same way.
const acmeProblemInterval = 5 * time.Minute

// watchACME wraps an ACME GetCertificate: it logs each certificate the
// first time it is served (obtained, or loaded from the cache) and, at
// most every acmeProblemInterval, a failure for -hostname with the likely
// fix. Failures for other names are the HTTP server's to log.
func watchACME(l *slog.Logger, hostname string, get func(*tls.ClientHelloInfo) (*tls.Certificate, error)) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	var (
		mu       sync.Mutex
		lastCert []byte    // guarded by mu; leaf DER last logged
		lastErr  time.Time // guarded by mu
	)
	return func(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
		c, err := get(hi)
		if slices.Contains(hi.SupportedProtos, "acme-tls/1") {
			return c, err // a CA's TLS-ALPN-01 challenge
		}
		if err != nil {
			if !strings.EqualFold(hi.ServerName, hostname) {
				return c, err
			}
			mu.Lock()
			now := time.Now()
			due := now.Sub(lastErr) >= acmeProblemInterval
			if due {
				lastErr = now
			}
			mu.Unlock()
			if due {
				l.Warn(fmt.Sprintf("derper: certificate: ACME could not get a certificate for %s: %v; fix: make DNS for %s point at this host and ports 443 and 80 reachable from the internet, and mind the CA's rate limits (test with -acme-directory-url of a staging CA)", hostname, err, hostname),
					"stage", stageCertificate, "err", err.Error())
			}
			return c, err
		}
		if c == nil || len(c.Certificate) == 0 {
			return c, err
		}
		mu.Lock()
		fresh := string(lastCert) != string(c.Certificate[0])
		if fresh {
			lastCert = c.Certificate[0]
		}
		mu.Unlock()
		if fresh {
			leaf := c.Leaf
			if leaf == nil {
				leaf, _ = x509.ParseCertificate(c.Certificate[0])
			}
			if leaf != nil {
				until := leaf.NotAfter.UTC().Format(time.RFC3339)
				logStage(l, stageCertificate, fmt.Sprintf("derper: certificate obtained for %s (ACME), valid until %s", strings.Join(certNames(leaf), ", "), until),
					"names", certNames(leaf), "not_after", until)
			}
		}
		return c, err
	}
}

// stunLogf is the STUN server's log function: its line saying where it
// listens becomes a stage line, the rest are logged as they are.
func stunLogf(l *slog.Logger) func(string, ...any) {
	logf := printfLogger(l, slog.LevelInfo)
	return func(format string, args ...any) {
		if strings.HasPrefix(format, "STUN server listening on") {
			msg := fmt.Sprintf(format, args...)
			logStage(l, stageListening, msg, "addr", strings.TrimPrefix(msg, "STUN server listening on "), "listener", "STUN")
			return
		}
		logf(format, args...)
	}
}
