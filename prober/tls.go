package prober

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/derpmap"
)

// certExpiryMargin is how long before expiry a certificate fails the TLS
// probe, unless its lifetime is short (see expiryMargin).
const certExpiryMargin = 7 * 24 * time.Hour

// tlsClass returns the TLS probe of node n.
func (d *DERPProber) tlsClass(n *derpmap.Node) ProbeClass {
	addr := net.JoinHostPort(n.HostName, strconv.Itoa(n.Port()))
	var mu sync.Mutex
	var notAfter time.Time // guarded by mu; of the leaf seen last
	return ProbeClass{
		Class: "tls",
		Probe: func(ctx context.Context) error {
			leaf, err := d.probeTLS(ctx, addr, n)
			if leaf != nil {
				mu.Lock()
				notAfter = leaf.NotAfter
				mu.Unlock()
			}
			return err
		},
		// An addition to the reference's metrics: how long the leaf
		// certificate has left. See docs/compat.md#prober-tls.
		Metrics: func(ns string, labels Labels) []prometheus.Metric {
			mu.Lock()
			na := notAfter
			mu.Unlock()
			if na.IsZero() {
				return nil
			}
			desc := prometheus.NewDesc(prometheus.BuildFQName(ns, "", "tls_leaf_expiry_seconds"),
				"Seconds until the leaf certificate seen by the latest TLS probe expires.", nil, prometheus.Labels(labels))
			return []prometheus.Metric{prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, na.Sub(d.p.now()).Seconds())}
		},
	}
}

// nodeTLSConfig returns the client TLS configuration for node n: server
// name HostName (no SNI for an IP literal), and verification against
// CertName when it is set, by pin when it is a sha256-raw: pin.
func (d *DERPProber) nodeTLSConfig(n *derpmap.Node) *tls.Config {
	cfg := new(tls.Config)
	if d.tlsConfig != nil {
		cfg = d.tlsConfig.Clone()
	}
	cfg.ServerName = n.HostName
	if cfg.InsecureSkipVerify {
		return cfg
	}
	if strings.HasPrefix(n.CertName, derpmap.CertPinPrefix) {
		pin, sni := n.CertName, n.HostName
		if isIPLiteral(sni) {
			sni = "" // none was sent
		}
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			return derphttp.VerifyCertPin(cs.PeerCertificates, pin, sni)
		}
		return cfg
	}
	if n.CertName != "" && n.CertName != n.HostName {
		roots, name := cfg.RootCAs, n.CertName
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server presented no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter})
			return err
		}
	}
	return cfg
}

// probeTLS connects to addr as node n and checks the certificate chain it
// presents: verified (against the roots, CertName or the node's pin), no
// CA-issued certificate inside its expiry margin or not yet valid, a DERP
// meta certificate present, and the leaf not revoked according to its CRL
// or, if it names no CRL, its OCSP responder. It returns the leaf if the
// handshake got that far.
func (d *DERPProber) probeTLS(ctx context.Context, addr string, n *derpmap.Node) (*x509.Certificate, error) {
	dialer := &tls.Dialer{Config: d.nodeTLSConfig(n)}
	c, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	defer c.Close()
	cs := c.(*tls.Conn).ConnectionState()
	if len(cs.PeerCertificates) == 0 {
		return nil, fmt.Errorf("%s presented no certificate", addr)
	}
	leaf := cs.PeerCertificates[0]

	var errs []error
	now := d.p.now()
	for _, cert := range cs.PeerCertificates {
		// Self-signed certificates, the meta certificate among them
		// (it has neither key ID), are not checked.
		if bytes.Equal(cert.SubjectKeyId, cert.AuthorityKeyId) {
			continue
		}
		if cert.NotBefore.After(now) {
			errs = append(errs, fmt.Errorf("certificate %q is not valid before %v", cert.Subject.CommonName, cert.NotBefore.Format(time.RFC3339)))
		}
		if left := cert.NotAfter.Sub(now); left < expiryMargin(cert) {
			errs = append(errs, fmt.Errorf("certificate %q expires in %v (at %v)", cert.Subject.CommonName, left.Truncate(time.Minute), cert.NotAfter.Format(time.RFC3339)))
		}
	}

	// A real derper always appends its meta certificate; without it
	// clients lose their fast start. See docs/compat.md#prober-tls.
	if _, _, ok := derphttp.ParseMetaCert(cs.PeerCertificates); !ok {
		errs = append(errs, fmt.Errorf("no DERP meta certificate presented by %s", addr))
	}

	if err := d.checkRevocation(ctx, &cs, leaf); err != nil {
		errs = append(errs, err)
	}
	return leaf, errors.Join(errs...)
}

// expiryMargin is certExpiryMargin, or a third of the certificate's
// lifetime when that is shorter, so that short-lived certificates (Let's
// Encrypt's six-day IP certificates) pass until they are overdue for
// renewal. See docs/compat.md#prober-tls.
func expiryMargin(cert *x509.Certificate) time.Duration {
	return min(certExpiryMargin, cert.NotAfter.Sub(cert.NotBefore)/3)
}
