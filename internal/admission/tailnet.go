package admission

import (
	"context"
	"errors"
	"expvar"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	tsclient "tailscale.com/client/tailscale/v2"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/openderp/openderp/key"
)

// DefaultAPIURL is the Tailscale API's base URL.
const DefaultAPIURL = "https://api.tailscale.com"

// Default timings of a Tailnet.
const (
	DefaultTailnetRefresh = time.Minute
	apiTimeout            = 30 * time.Second // one API request, token included
	minMissRefreshGap     = 10 * time.Second // refreshes asked for by unknown keys
)

// Errors of Tailnet.Admit.
var (
	// ErrNotInTailnet refuses a key that is not the current key of an
	// authorized device of the tailnet.
	ErrNotInTailnet = errors.New("node key not an authorized device of the tailnet")
	// ErrNoDeviceList refuses every key while fail-closed and before the
	// API has answered once.
	ErrNoDeviceList = errors.New("no tailnet device list yet (Tailscale API not answered) and fail-closed")
)

// TailnetConfig configures a Tailnet.
type TailnetConfig struct {
	// APIURL is the API's base URL; empty means DefaultAPIURL.
	APIURL string
	// Tailnet names the tailnet; empty or "-" means the one the OAuth
	// client belongs to.
	Tailnet string
	// Credentials of an OAuth client allowed to read devices (scope
	// devices:core:read).
	Credentials OAuthCredentials
	// Refresh is how often the device list is fetched; zero means
	// DefaultTailnetRefresh.
	Refresh time.Duration
	// FailOpen admits every client until the API has answered once;
	// otherwise none is admitted until then.
	FailOpen bool
	// Logf receives refresh failures and changes; nil discards them.
	Logf func(string, ...any)
}

// Tailnet admits the current node keys of a tailnet's authorized devices,
// from a device list fetched through the Tailscale API with
// tailscale.com/client/tailscale/v2 and kept in memory. Run fetches it and
// refreshes it periodically, and soon after an unknown key is refused,
// so a new device is admitted on its next try. When a refresh fails the
// last list stays in force; before the first success, FailOpen decides.
type Tailnet struct {
	cfg       TailnetConfig // set once
	client    *tsclient.Client
	transport *http.Transport // set once; its idle connections are closed when Run ends
	missGap   time.Duration   // set once; minMissRefreshGap but in tests

	keys      atomic.Pointer[map[key.NodePublic]struct{}] // nil until the first success
	miss      chan struct{}                               // cap 1; Admit asks Run for a refresh
	soon      chan struct{}                               // cap 1; RefreshSoon asks Run for one
	onRefresh func()                                      // set once, in tests; called after each Refresh

	mu          sync.Mutex // guards the fields below; held by refresh
	lastAttempt time.Time  // guarded by mu
	lastErr     string     // guarded by mu; "" after a success

	refreshes, failures, failOpenAdmits expvar.Int
	lastSuccess                         atomic.Int64 // Unix seconds; 0 never
}

// NewTailnet returns a Tailnet for cfg. It fetches nothing until Run.
func NewTailnet(cfg TailnetConfig) (*Tailnet, error) {
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	base, err := url.Parse(cfg.APIURL)
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, fmt.Errorf("tailnet API URL %q: want an http:// or https:// URL", cfg.APIURL)
	}
	if cfg.Tailnet == "" {
		cfg.Tailnet = "-"
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultTailnetRefresh
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t := &Tailnet{
		cfg:       cfg,
		transport: tr,
		missGap:   minMissRefreshGap,
		miss:      make(chan struct{}, 1),
		soon:      make(chan struct{}, 1),
	}
	t.client = &tsclient.Client{
		BaseURL:   base,
		UserAgent: "openderp-derper",
		Tailnet:   cfg.Tailnet,
		HTTP:      &http.Client{Transport: tr, Timeout: apiTimeout},
		Auth:      oauthClientAuth(cfg.Credentials),
	}
	return t, nil
}

// oauthClientAuth authenticates with OAuth client credentials, fetching
// tokens through the API client's own HTTP client (so through its
// transport) rather than http.DefaultClient as tsclient.OAuth does.
type oauthClientAuth OAuthCredentials

func (a oauthClientAuth) HTTPClient(orig *http.Client, baseURL string) *http.Client {
	cc := clientcredentials.Config{
		ClientID:     a.ClientID,
		ClientSecret: a.ClientSecret,
		TokenURL:     baseURL + "/api/v2/oauth/token",
		AuthStyle:    oauth2.AuthStyleInParams,
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, orig)
	return &http.Client{
		Transport: &oauth2.Transport{Base: orig.Transport, Source: oauth2.ReuseTokenSource(nil, cc.TokenSource(ctx))},
		Timeout:   orig.Timeout,
	}
}

// Run fetches the device list at once, then every Refresh, on
// RefreshSoon, and when Admit has refused an unknown key (at most every
// ten seconds), until ctx ends.
func (t *Tailnet) Run(ctx context.Context) {
	defer t.transport.CloseIdleConnections()
	t.Refresh(ctx)
	tick := time.NewTicker(t.cfg.Refresh)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-t.soon:
		case <-t.miss:
			t.mu.Lock()
			recent := time.Since(t.lastAttempt) < t.missGap
			t.mu.Unlock()
			if recent {
				continue
			}
		}
		t.Refresh(ctx)
	}
}

// Refresh fetches the device list once. On failure it logs and counts the
// error, keeps the list in force and returns the error.
func (t *Tailnet) Refresh(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.onRefresh != nil {
		defer t.onRefresh()
	}
	t.lastAttempt = time.Now()
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	devs, err := t.client.Devices().List(ctx)
	if err != nil {
		t.failures.Add(1)
		err = fmt.Errorf("fetching the device list of tailnet %q from %s: %w", t.cfg.Tailnet, t.cfg.APIURL, err)
		// Log a failure when it starts or changes, not on every retry.
		if msg := err.Error(); msg != t.lastErr {
			t.lastErr = msg
			t.cfg.Logf("admission: %v; %s", err, t.fallbackLocked())
		}
		return err
	}
	keys, skipped := deviceKeys(devs, time.Now())
	old := t.keys.Swap(&keys)
	t.refreshes.Add(1)
	t.lastSuccess.Store(time.Now().Unix())
	if t.lastErr != "" || old == nil || len(*old) != len(keys) {
		t.cfg.Logf("admission: tailnet %q: %d devices admitted (%d not authorized, expired or without a key)", t.cfg.Tailnet, len(keys), skipped)
	}
	t.lastErr = ""
	return nil
}

// fallbackLocked says what admission does while the API fails.
func (t *Tailnet) fallbackLocked() string {
	switch {
	case t.keys.Load() != nil:
		return "keeping the last device list"
	case t.cfg.FailOpen:
		return "admitting every client until it answers (fail-open)"
	default:
		return "admitting no client until it answers (fail-closed)"
	}
}

// deviceKeys returns the node keys of the devices that may connect:
// authorized, with a key that parses and has not expired. skipped counts
// the others.
func deviceKeys(devs []tsclient.Device, now time.Time) (keys map[key.NodePublic]struct{}, skipped int) {
	keys = make(map[key.NodePublic]struct{}, len(devs))
	for _, d := range devs {
		var k key.NodePublic
		expired := !d.KeyExpiryDisabled && !d.Expires.IsZero() && d.Expires.Before(now)
		if !d.Authorized || expired || k.UnmarshalText([]byte(d.NodeKey)) != nil {
			skipped++
			continue
		}
		keys[k] = struct{}{}
	}
	return keys, skipped
}

// Admit is a derp.AdmitFunc admitting the keys of the device list.
func (t *Tailnet) Admit(_ context.Context, k key.NodePublic, _ netip.AddrPort) error {
	keys := t.keys.Load()
	if keys == nil {
		t.askRefresh()
		if t.cfg.FailOpen {
			t.failOpenAdmits.Add(1)
			return nil
		}
		return ErrNoDeviceList
	}
	if _, ok := (*keys)[k]; !ok {
		t.askRefresh()
		return ErrNotInTailnet
	}
	return nil
}

// RefreshSoon makes Run refresh the list without waiting for the next
// period. It does not block.
func (t *Tailnet) RefreshSoon() {
	select {
	case t.soon <- struct{}{}:
	default:
	}
}

func (t *Tailnet) askRefresh() {
	select {
	case t.miss <- struct{}{}:
	default:
	}
}

// Len returns the number of keys admitted, -1 before the first list.
func (t *Tailnet) Len() int {
	keys := t.keys.Load()
	if keys == nil {
		return -1
	}
	return len(*keys)
}

// ExpVar returns the Tailnet's metrics.
func (t *Tailnet) ExpVar() *expvar.Map {
	m := new(expvar.Map)
	m.Set("counter_refreshes", &t.refreshes)
	m.Set("counter_refresh_failures", &t.failures)
	m.Set("counter_fail_open_admits", &t.failOpenAdmits)
	m.Set("gauge_devices", expvar.Func(func() any { return int64(t.Len()) }))
	m.Set("gauge_last_refresh_unix", expvar.Func(func() any { return t.lastSuccess.Load() }))
	return m
}
