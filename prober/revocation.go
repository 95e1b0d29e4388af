package prober

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
)

const (
	// maxRevocationBody bounds a CRL or OCSP response body.
	maxRevocationBody = 10 << 20
	// crlMaxAge bounds how long a fetched CRL is reused.
	crlMaxAge = time.Hour
)

// checkRevocation asks whether leaf has been revoked: by the first CRL
// distribution point it names, else by its first OCSP responder. A leaf
// naming neither passes, whoever issued it.
// See docs/compat.md#prober-tls.
func (d *DERPProber) checkRevocation(ctx context.Context, cs *tls.ConnectionState, leaf *x509.Certificate) error {
	switch {
	case len(leaf.CRLDistributionPoints) > 0:
		return d.checkCRL(ctx, cs, leaf)
	case len(leaf.OCSPServer) > 0:
		return d.checkOCSP(ctx, cs, leaf)
	}
	return nil
}

// issuerOf returns leaf's issuer: the presented certificate whose subject
// key ID is the leaf's authority key ID or, as the issuer may be a root
// the server did not send, the next certificate of a verified chain.
func issuerOf(cs *tls.ConnectionState, leaf *x509.Certificate) *x509.Certificate {
	for _, cert := range cs.PeerCertificates[1:] {
		if len(leaf.AuthorityKeyId) > 0 && bytes.Equal(cert.SubjectKeyId, leaf.AuthorityKeyId) {
			return cert
		}
	}
	for _, chain := range cs.VerifiedChains {
		if len(chain) > 1 {
			return chain[1]
		}
	}
	return nil
}

// checkCRL fetches (or reuses) the leaf's first CRL, verifies it with the
// issuer's key and looks for the leaf's serial number in it.
func (d *DERPProber) checkCRL(ctx context.Context, cs *tls.ConnectionState, leaf *x509.Certificate) error {
	subject := leaf.Subject.String()
	issuer := issuerOf(cs, leaf)
	if issuer == nil {
		return fmt.Errorf("CRL verification failed for %s: issuer certificate for %s not in presented chain", subject, subject)
	}
	crl, err := d.crls.get(ctx, leaf.CRLDistributionPoints[0], issuer, d.p.now())
	if err != nil {
		return fmt.Errorf("CRL verification failed for %s: %w", subject, err)
	}
	for _, rc := range crl.RevokedCertificateEntries {
		if rc.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
			return fmt.Errorf("cert for %s has been revoked on %s, reason: %d", subject, rc.RevocationTime.Format(time.RFC3339), rc.ReasonCode)
		}
	}
	return nil
}

// crlCache holds verified CRLs by URL and merges concurrent fetches of
// one URL.
type crlCache struct {
	mu      sync.Mutex
	entries map[string]*crlEntry // guarded by mu
}

// crlEntry is one URL's CRL, or the fetch in progress (ready open).
type crlEntry struct {
	ready   chan struct{} // closed when the fetch ends
	crl     *x509.RevocationList
	issuer  *x509.Certificate // that verified crl
	expires time.Time
	err     error
}

// get returns the CRL at url verified against issuer, from the cache while
// it is fresh: until its NextUpdate, at most crlMaxAge.
func (c *crlCache) get(ctx context.Context, url string, issuer *x509.Certificate, now time.Time) (*x509.RevocationList, error) {
	c.mu.Lock()
	if c.entries == nil {
		c.entries = make(map[string]*crlEntry)
	}
	e := c.entries[url]
	fresh := func(e *crlEntry) bool {
		select {
		case <-e.ready:
			return e.err == nil && now.Before(e.expires)
		default:
			return true // in progress: wait for it
		}
	}
	if e == nil || !fresh(e) {
		e = &crlEntry{ready: make(chan struct{})}
		c.entries[url] = e
		c.mu.Unlock()
		e.crl, e.err = fetchCRL(ctx, url, issuer)
		if e.err == nil {
			e.issuer = issuer
			e.expires = now.Add(crlMaxAge)
			if nu := e.crl.NextUpdate; nu.IsZero() {
				e.expires = now // no NextUpdate: not cached
			} else if nu.Before(e.expires) {
				e.expires = nu
			}
		}
		close(e.ready)
		return e.crl, e.err
	}
	c.mu.Unlock()
	select {
	case <-e.ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for CRL from %s: %w", url, ctx.Err())
	}
	if e.err != nil {
		return nil, e.err
	}
	if !e.issuer.Equal(issuer) {
		// A different chain for the same URL: verify again.
		if err := e.crl.CheckSignatureFrom(issuer); err != nil {
			return nil, fmt.Errorf("crl: checking signature: %w", err)
		}
	}
	return e.crl, nil
}

// fetchCRL downloads the CRL at url and checks its signature.
func fetchCRL(ctx context.Context, url string, issuer *x509.Certificate) (*x509.RevocationList, error) {
	body, err := fetch(ctx, http.MethodGet, url, "", nil, "crl")
	if err != nil {
		return nil, err
	}
	crl, err := x509.ParseRevocationList(body)
	if err != nil {
		return nil, fmt.Errorf("crl: parsing: %w", err)
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		return nil, fmt.Errorf("crl: checking signature: %w", err)
	}
	return crl, nil
}

// fetch makes one request and returns the body of a 200 answer, read up
// to maxRevocationBody. what prefixes errors.
func fetch(ctx context.Context, method, url, contentType string, body []byte, what string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: non-200 status code from %s server: %s", what, strings.ToUpper(what), res.Status)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, maxRevocationBody))
	if err != nil {
		return nil, fmt.Errorf("%s: reading response: %w", what, err)
	}
	return b, nil
}

// checkOCSP asks the leaf's first OCSP responder whether it is revoked.
func (d *DERPProber) checkOCSP(ctx context.Context, cs *tls.ConnectionState, leaf *x509.Certificate) error {
	issuer := issuerOf(cs, leaf)
	if issuer == nil {
		return fmt.Errorf("OCSP: no issuer of %q to check it against", leaf.Subject.CommonName)
	}
	reqBody, err := ocsp.CreateRequest(leaf, issuer, nil)
	if err != nil {
		return fmt.Errorf("OCSP: creating request: %w", err)
	}
	body, err := fetch(ctx, http.MethodPost, leaf.OCSPServer[0], "application/ocsp-request", reqBody, "ocsp")
	if err != nil {
		return err
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
