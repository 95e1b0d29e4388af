package prober

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/ocsp"

	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/derpmap"
)

const (
	// certExpiryMargin is how long before expiry a certificate fails the
	// TLS probe.
	certExpiryMargin = 7 * 24 * time.Hour
	// maxOCSPResponse bounds an OCSP response body.
	maxOCSPResponse = 10 << 20
)

// tlsClass returns the TLS probe of node n.
func (d *DERPProber) tlsClass(n *derpmap.Node) ProbeClass {
	addr := net.JoinHostPort(n.HostName, strconv.Itoa(n.Port()))
	var mu sync.Mutex
	var notAfter time.Time // guarded by mu; of the leaf seen last
	return ProbeClass{
		Class: "tls",
		Probe: func(ctx context.Context) error {
			leaf, err := d.probeTLS(ctx, addr, n.HostName)
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

// probeTLS connects to addr with server name host and checks the
// certificate chain it presents: verified against the roots, no
// certificate inside its last week or not yet valid, a DERP meta
// certificate present, and, if the leaf names an OCSP responder, not
// revoked. It returns the leaf if the handshake got that far.
func (d *DERPProber) probeTLS(ctx context.Context, addr, host string) (*x509.Certificate, error) {
	cfg := new(tls.Config)
	if d.tlsConfig != nil {
		cfg = d.tlsConfig.Clone()
	}
	cfg.ServerName = host
	dialer := &tls.Dialer{Config: cfg}
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
		if left := cert.NotAfter.Sub(now); left < certExpiryMargin {
			errs = append(errs, fmt.Errorf("certificate %q expires in %v (at %v)", cert.Subject.CommonName, left.Truncate(time.Minute), cert.NotAfter.Format(time.RFC3339)))
		}
	}

	// A real derper always appends its meta certificate; without it
	// clients lose their fast start. See docs/compat.md#prober-tls.
	if _, _, ok := derphttp.ParseMetaCert(cs.PeerCertificates); !ok {
		errs = append(errs, fmt.Errorf("no DERP meta certificate presented by %s", addr))
	}

	// See docs/compat.md#prober-tls.
	if len(leaf.OCSPServer) > 0 {
		if err := d.checkOCSP(ctx, &cs, leaf); err != nil {
			errs = append(errs, err)
		}
	}
	return leaf, errors.Join(errs...)
}

// checkOCSP asks the leaf's first OCSP responder whether it is revoked.
func (d *DERPProber) checkOCSP(ctx context.Context, cs *tls.ConnectionState, leaf *x509.Certificate) error {
	var issuer *x509.Certificate
	for _, cert := range cs.PeerCertificates[1:] {
		if len(leaf.AuthorityKeyId) > 0 && bytes.Equal(cert.SubjectKeyId, leaf.AuthorityKeyId) {
			issuer = cert
			break
		}
	}
	if issuer == nil {
		// The issuer may be a root the server did not send.
		for _, chain := range cs.VerifiedChains {
			if len(chain) > 1 {
				issuer = chain[1]
				break
			}
		}
	}
	if issuer == nil {
		return fmt.Errorf("OCSP: no issuer of %q to check it against", leaf.Subject.CommonName)
	}
	reqBody, err := ocsp.CreateRequest(leaf, issuer, nil)
	if err != nil {
		return fmt.Errorf("OCSP: creating request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, leaf.OCSPServer[0], bytes.NewReader(reqBody))
	if err != nil {
		return fmt.Errorf("OCSP: %w", err)
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	req.Header.Set("Accept", "application/ocsp-response")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("OCSP: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("OCSP: %s answered %s", leaf.OCSPServer[0], res.Status)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxOCSPResponse))
	if err != nil {
		return fmt.Errorf("OCSP: reading response: %w", err)
	}
	resp, err := ocsp.ParseResponseForCert(body, leaf, issuer)
	if err != nil {
		return fmt.Errorf("OCSP: parsing response: %w", err)
	}
	switch resp.Status {
	case ocsp.Good:
		return nil
	case ocsp.Revoked:
		return fmt.Errorf("OCSP: certificate %q revoked at %v (reason %d)", leaf.Subject.CommonName, resp.RevokedAt.Format(time.RFC3339), resp.RevocationReason)
	default:
		return fmt.Errorf("OCSP: status of certificate %q is unknown", leaf.Subject.CommonName)
	}
}
