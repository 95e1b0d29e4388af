package certs

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// IP-certificate issuance parameters (today's derper's values).
const (
	ipIssueBudget   = 3 * time.Minute
	ipBackoffFirst  = time.Minute
	ipBackoffMax    = 30 * time.Minute
	ipCertProfile   = "shortlived"
	acmeUserAgent   = "openderp-derper"
	challengePrefix = "/.well-known/acme-challenge/"
)

// ipCertProvider serves ACME certificates for the local IP address of
// each TLS connection (-acme-ip-certs). With a DNS host name, handshakes
// naming that host go to autocert instead.
type ipCertProvider struct {
	cfg   Config
	host  *acmeProvider // nil in IP-only mode
	now   func() time.Time
	dir   string
	logf  func(string, ...any)
	newCl func() *acme.Client // set once

	acctMu sync.Mutex
	client *acme.Client // guarded by acctMu; registered account, nil until first use

	mu       sync.Mutex
	certs    map[netip.Addr]*tls.Certificate // guarded by mu
	inflight map[netip.Addr]chan struct{}    // guarded by mu; closed when the issuance ends
	backoff  map[netip.Addr]ipBackoff        // guarded by mu
	tokens   map[string]string               // guarded by mu; HTTP-01 token → key authorization
	lastErr  map[netip.Addr]error            // guarded by mu
}

type ipBackoff struct {
	next  time.Time
	delay time.Duration
}

func newIPCertProvider(cfg Config, ipOnly bool) (*ipCertProvider, error) {
	p := &ipCertProvider{
		cfg:      cfg,
		now:      time.Now,
		dir:      cfg.Dir,
		logf:     cfg.logf,
		certs:    make(map[netip.Addr]*tls.Certificate),
		inflight: make(map[netip.Addr]chan struct{}),
		backoff:  make(map[netip.Addr]ipBackoff),
		tokens:   make(map[string]string),
		lastErr:  make(map[netip.Addr]error),
	}
	p.newCl = func() *acme.Client {
		u := cfg.DirectoryURL
		if u == "" {
			u = autocert.DefaultACMEDirectory
		}
		return &acme.Client{DirectoryURL: u, HTTPClient: cfg.ACMEHTTPClient, UserAgent: acmeUserAgent}
	}
	if !ipOnly {
		h, err := newACME(cfg, nil)
		if err != nil {
			return nil, err
		}
		p.host = h
	}
	return p, nil
}

func (p *ipCertProvider) TLSConfig() *tls.Config {
	if p.host == nil {
		return &tls.Config{
			MinVersion:     tls.VersionTLS12,
			NextProtos:     []string{"http/1.1"},
			GetCertificate: p.getCertificate,
		}
	}
	c := p.host.TLSConfig()
	hostGet := c.GetCertificate
	c.GetCertificate = func(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if _, err := netip.ParseAddr(hi.ServerName); err == nil || hi.ServerName == "" {
			return p.getCertificate(hi)
		}
		return hostGet(hi)
	}
	return c
}

// HTTPHandler answers HTTP-01 challenges of IP issuances. Unknown tokens
// fall through: to autocert's handler with a DNS host name (whose own
// tokens the reference would hide), else to a 404.
func (p *ipCertProvider) HTTPHandler(fallback http.Handler) http.Handler {
	next := fallback
	if p.host != nil {
		next = p.host.HTTPHandler(fallback)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.URL.Path, challengePrefix)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		p.mu.Lock()
		ka, known := p.tokens[token]
		p.mu.Unlock()
		switch {
		case known:
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte(ka))
		case p.host != nil:
			next.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}

// localIP returns the unmapped local address of the handshake's
// connection.
func localIP(hi *tls.ClientHelloInfo) (netip.Addr, error) {
	if hi.Conn == nil {
		return netip.Addr{}, errors.New("no connection for the handshake")
	}
	ap, err := netip.ParseAddrPort(hi.Conn.LocalAddr().String())
	if err != nil {
		return netip.Addr{}, fmt.Errorf("local address: %w", err)
	}
	return ap.Addr().Unmap().WithZone(""), nil
}

func (p *ipCertProvider) getCertificate(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
	ip, err := localIP(hi)
	if err != nil {
		return nil, err
	}
	if hi.ServerName != "" {
		sni, err := netip.ParseAddr(hi.ServerName)
		if err != nil {
			return nil, fmt.Errorf("no certificate for hostname %q; this server only serves IP address certificates", hi.ServerName)
		}
		if sni.Unmap() != ip {
			return nil, fmt.Errorf("requested certificate for IP %s does not match the connection's IP address", sni)
		}
	}
	ctx := hi.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	for range 2 {
		p.mu.Lock()
		c := p.certs[ip]
		if c == nil {
			if c = p.loadCached(ip); c != nil {
				p.certs[ip] = c
			}
		}
		now := p.now()
		if c != nil && now.Before(c.Leaf.NotAfter) {
			if needsRenewal(c.Leaf, now) {
				p.startIssueLocked(ip) // serve the current one meanwhile
			}
			p.mu.Unlock()
			return clip(c), nil
		}
		if b, ok := p.backoff[ip]; ok && now.Before(b.next) {
			p.mu.Unlock()
			return nil, fmt.Errorf("cert issuance for %s failed recently; next attempt no earlier than %s", ip, b.next.Format(time.RFC3339))
		}
		done := p.startIssueLocked(ip)
		p.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for a certificate for %s: %w", ip, ctx.Err())
		}
		p.mu.Lock()
		err = p.lastErr[ip]
		p.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("cert issuance for %s: %w", ip, err)
		}
	}
	return nil, fmt.Errorf("cert issuance for %s: no certificate", ip)
}

// clip returns a copy of c whose chain has no spare capacity.
func clip(c *tls.Certificate) *tls.Certificate {
	cc := *c
	cc.Certificate = cc.Certificate[:len(cc.Certificate):len(cc.Certificate)]
	return &cc
}

// needsRenewal reports whether less than a third of the certificate's
// lifetime is left.
func needsRenewal(leaf *x509.Certificate, now time.Time) bool {
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	return leaf.NotAfter.Sub(now) < life/3
}

// startIssueLocked starts an issuance for ip unless one runs, and returns
// the channel closed when it ends. p.mu must be held.
func (p *ipCertProvider) startIssueLocked(ip netip.Addr) chan struct{} {
	if ch, ok := p.inflight[ip]; ok {
		return ch
	}
	if b, ok := p.backoff[ip]; ok && p.now().Before(b.next) {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	ch := make(chan struct{})
	p.inflight[ip] = ch
	go p.issue(ip, ch)
	return ch
}

// issue runs one ACME issuance for ip, in the background of whichever
// handshake asked for it, so that a handshake giving up does not waste
// the work.
func (p *ipCertProvider) issue(ip netip.Addr, done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), ipIssueBudget)
	defer cancel()
	c, err := p.order(ctx, ip)
	p.mu.Lock()
	defer close(done)
	defer p.mu.Unlock()
	delete(p.inflight, ip)
	p.lastErr[ip] = err
	if err != nil {
		b := p.backoff[ip]
		if b.delay == 0 {
			b.delay = ipBackoffFirst
		} else {
			b.delay = min(2*b.delay, ipBackoffMax)
		}
		b.next = p.now().Add(b.delay)
		p.backoff[ip] = b
		p.logf("derper: acme: getting cert for %s: %v (next attempt in %v)", ip, err, b.delay)
		return
	}
	delete(p.backoff, ip)
	p.certs[ip] = c
	node, _ := json.Marshal(struct {
		Name     string
		RegionID int
		HostName string
	}{"custom", 900, ip.String()})
	p.logf("derper: acme: got cert for %s (expires %v). Configure it in DERPMap using (https://tailscale.com/s/custom-derp):\n  %s", ip, c.Leaf.NotAfter, node)
}

// account returns the ACME client with a registered account, creating
// the account key in the certificate directory on first use.
func (p *ipCertProvider) account(ctx context.Context) (*acme.Client, error) {
	p.acctMu.Lock()
	defer p.acctMu.Unlock()
	if p.client != nil {
		return p.client, nil
	}
	key, err := loadOrCreateKey(filepath.Join(p.dir, "acme-account.key"))
	if err != nil {
		return nil, err
	}
	cl := p.newCl()
	cl.Key = key
	acct := &acme.Account{}
	if p.cfg.Email != "" {
		acct.Contact = []string{"mailto:" + p.cfg.Email}
	}
	if _, err := cl.Register(ctx, acct, acme.AcceptTOS); err != nil && !errors.Is(err, acme.ErrAccountAlreadyExists) {
		return nil, fmt.Errorf("registering ACME account: %w", err)
	}
	p.client = cl
	return cl, nil
}

// order gets a certificate for ip: one order with the IP identifier and
// the short-lived profile, HTTP-01 for every pending authorization.
func (p *ipCertProvider) order(ctx context.Context, ip netip.Addr) (*tls.Certificate, error) {
	cl, err := p.account(ctx)
	if err != nil {
		return nil, err
	}
	o, err := cl.AuthorizeOrder(ctx, acme.IPIDs(ip.String()), acme.WithOrderIssuanceProfile(ipCertProfile))
	if err != nil {
		return nil, fmt.Errorf("ordering: %w", err)
	}
	for _, u := range o.AuthzURLs {
		if err := p.authorize(ctx, cl, u); err != nil {
			return nil, err
		}
	}
	if o, err = cl.WaitOrder(ctx, o.URI); err != nil {
		return nil, fmt.Errorf("waiting for the order: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{IPAddresses: []net.IP{ip.AsSlice()}}, key)
	if err != nil {
		return nil, err
	}
	chain, _, err := cl.CreateCertFromOrder(ctx, o, csr, true)
	if err != nil {
		return nil, fmt.Errorf("finalizing: %w", err)
	}
	cert, err := certFromChain(chain, key, ip)
	if err != nil {
		return nil, err
	}
	if err := p.store(ip, chain, key); err != nil {
		return nil, err
	}
	return cert, nil
}

func (p *ipCertProvider) authorize(ctx context.Context, cl *acme.Client, url string) error {
	z, err := cl.GetAuthorization(ctx, url)
	if err != nil {
		return fmt.Errorf("getting authorization: %w", err)
	}
	if z.Status != acme.StatusPending {
		return nil
	}
	var chal *acme.Challenge
	for _, c := range z.Challenges {
		if c.Type == "http-01" {
			chal = c
		}
	}
	if chal == nil {
		return errors.New("the CA offered no http-01 challenge")
	}
	ka, err := cl.HTTP01ChallengeResponse(chal.Token)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.tokens[chal.Token] = ka
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.tokens, chal.Token)
		p.mu.Unlock()
	}()
	if _, err := cl.Accept(ctx, chal); err != nil {
		return fmt.Errorf("accepting the challenge: %w", err)
	}
	if _, err := cl.WaitAuthorization(ctx, z.URI); err != nil {
		return fmt.Errorf("authorization: %w", err)
	}
	return nil
}

// certFromChain builds a served certificate and checks it covers ip.
func certFromChain(chain [][]byte, key crypto.Signer, ip netip.Addr) (*tls.Certificate, error) {
	if len(chain) == 0 {
		return nil, errors.New("empty certificate chain")
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, err
	}
	if err := leaf.VerifyHostname(ip.String()); err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
}

// ipFileBase names the cache files of ip: the address with ':' replaced
// by '.', so that no two addresses share a name.
func (p *ipCertProvider) ipFileBase(ip netip.Addr) string {
	return filepath.Join(p.dir, strings.ReplaceAll(ip.String(), ":", "."))
}

func (p *ipCertProvider) store(ip netip.Addr, chain [][]byte, key *ecdsa.PrivateKey) error {
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	var crt []byte
	for _, der := range chain {
		crt = append(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return err
	}
	base := p.ipFileBase(ip)
	if err := writeFileAtomic(base+".key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(base+".crt", crt, 0o644)
}

// loadCached returns the certificate cached on disk for ip if it is in
// date, covers ip, does not need renewal yet and was issued by a CA (a
// self-signed manual-mode file of the same name is not taken for an ACME
// certificate). p.mu must be held.
func (p *ipCertProvider) loadCached(ip netip.Addr) *tls.Certificate {
	base := p.ipFileBase(ip)
	c, err := tls.LoadX509KeyPair(base+".crt", base+".key")
	if err != nil {
		return nil
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return nil
	}
	now := p.now()
	if now.Before(leaf.NotBefore) || !now.Before(leaf.NotAfter) || needsRenewal(leaf, now) || leaf.VerifyHostname(ip.String()) != nil {
		return nil
	}
	if leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature) == nil {
		return nil // self-signed
	}
	c.Leaf = leaf
	p.logf("derper: acme: loaded cached cert for %s (expires %v)", ip, leaf.NotAfter)
	return &c
}

// loadOrCreateKey reads an ECDSA key in SEC 1 PEM from path, or creates
// one there (mode 0600).
func loadOrCreateKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("%s: no PEM key", path)
		}
		return x509.ParseECPrivateKey(blk.Bytes)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return nil, err
	}
	return key, nil
}
