package bootstrapdns

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"expvar"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Timings of the refresher.
const (
	RefreshInterval = 10 * time.Minute
	refreshTimeout  = time.Minute
	// maxQueried bounds the set of names seen in ?q= queries; the set is
	// emptied when it grows past this.
	maxQueried = 500
	// MaxQueryLen is the longest name accepted in ?q=: the longest DNS
	// name in presentation form, plus an optional trailing dot. Together
	// with maxQueried it bounds the memory the set of queried names pins
	// to about 127 KB, however many requests arrive.
	// See docs/compat.md#bootstrap-dns-query.
	MaxQueryLen = 254
)

// validQuery reports whether q could be a DNS host name: at most
// MaxQueryLen bytes of letters, digits, '-', '_' and '.'. Anything else is
// refused with 400 and never stored.
func validQuery(q string) bool {
	if len(q) > MaxQueryLen {
		return false
	}
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// A Resolver looks up host addresses and TXT records. *net.Resolver
// satisfies it; tests supply fakes so no real DNS is used.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// entry is one parsed list item: "name" or "name/txtname".
type entry struct {
	name, txt string
}

// result is what one refresh learned about a list.
type result struct {
	addrs   map[string][]netip.Addr // names that resolved; nil if none did
	percent map[string]float64      // rollout fraction in [0, 1] per name
}

// Server resolves the configured names and answers /bootstrap-dns. Create
// it with New, run Refresh or Run, and mount it as an http.Handler.
type Server struct {
	resolver    Resolver                      // set once
	logf        func(format string, a ...any) // set once
	published   []entry                       // set once
	unpublished []entry                       // set once

	// Counters, published by the caller through Vars.
	requests, publishedHits, publishedMisses        expvar.Int
	unpublishedHits, unpublishedMisses, percentMiss expvar.Int
	badQueries                                      expvar.Int // ?q= refused with 400

	mu              sync.Mutex
	publishedJSON   []byte                  // guarded by mu; nil until the first refresh
	publishedAddrs  map[string][]netip.Addr // guarded by mu
	unpublishedInfo result                  // guarded by mu
	queried         map[string]struct{}     // guarded by mu
}

// New returns a Server for the comma-separated lists published and
// unpublished (the -bootstrap-dns-names and
// -unpublished-bootstrap-dns-names flags). A nil resolver means
// net.DefaultResolver; a nil logf discards logs.
func New(published, unpublished string, r Resolver, logf func(format string, a ...any)) *Server {
	if r == nil {
		r = net.DefaultResolver
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Server{
		resolver:    r,
		logf:        logf,
		published:   parseList(published),
		unpublished: parseList(unpublished),
		queried:     make(map[string]struct{}),
	}
}

func parseList(s string) []entry {
	if s == "" {
		return nil
	}
	var es []entry
	for _, item := range strings.Split(s, ",") {
		name, txt, _ := strings.Cut(item, "/")
		es = append(es, entry{name: name, txt: txt})
	}
	return es
}

// Enabled reports whether any name is configured; Run does nothing
// otherwise.
func (s *Server) Enabled() bool { return len(s.published)+len(s.unpublished) > 0 }

// Run refreshes both lists at once and then every RefreshInterval until
// ctx is done.
func (s *Server) Run(ctx context.Context) {
	if !s.Enabled() {
		return
	}
	t := time.NewTicker(RefreshInterval)
	defer t.Stop()
	for {
		s.Refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh resolves both lists once and replaces the cached answers.
func (s *Server) Refresh(ctx context.Context) {
	if len(s.published) > 0 {
		r := s.resolve(ctx, s.published)
		for _, addrs := range r.addrs {
			// Shuffle so clients are not steered to one address family.
			rand.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
		}
		js, err := json.MarshalIndent(toStrings(r.addrs), "", "\t")
		if err != nil {
			s.logf("bootstrap DNS: encoding: %v", err)
			return
		}
		s.mu.Lock()
		s.publishedJSON = js
		s.publishedAddrs = r.addrs
		s.mu.Unlock()
	}
	if len(s.unpublished) > 0 {
		r := s.resolve(ctx, s.unpublished)
		s.mu.Lock()
		s.unpublishedInfo = r
		s.mu.Unlock()
	}
}

func (s *Server) resolve(ctx context.Context, es []entry) result {
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	var r result
	r.percent = make(map[string]float64)
	for _, e := range es {
		addrs, err := s.resolver.LookupNetIP(ctx, "ip", e.name)
		if err != nil {
			s.logf("bootstrap DNS lookup %q: %v", e.name, err)
			continue
		}
		if r.addrs == nil {
			r.addrs = make(map[string][]netip.Addr)
		}
		for i, a := range addrs {
			addrs[i] = a.Unmap()
		}
		r.addrs[e.name] = addrs
		if e.txt == "" {
			r.percent[e.name] = 1
			continue
		}
		txts, err := s.resolver.LookupTXT(ctx, e.txt)
		if err != nil {
			s.logf("bootstrap DNS TXT lookup %q: %v", e.txt, err)
			continue
		}
		for _, t := range txts {
			if v, err := strconv.Atoi(t); err == nil && v >= 0 && v <= 100 {
				r.percent[e.name] = float64(v) / 100
			}
		}
	}
	return r
}

func toStrings(m map[string][]netip.Addr) map[string][]string {
	if m == nil {
		return nil
	}
	out := make(map[string][]string, len(m))
	for name, addrs := range m {
		ss := make([]string, len(addrs))
		for i, a := range addrs {
			ss[i] = a.String()
		}
		out[name] = ss
	}
	return out
}

// ServeHTTP answers /bootstrap-dns. It sets Content-Type and
// Connection: close; the caller adds the browser security headers.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	w.Header().Set("Connection", "close")
	q := r.URL.Query().Get("q")
	if !validQuery(q) {
		s.badQueries.Add(1)
		http.Error(w, "bad query: q must be a DNS name of at most 254 bytes", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")

	s.mu.Lock()
	if q != "" {
		s.queried[q] = struct{}{}
		if len(s.queried) > maxQueried {
			clear(s.queried)
		}
	}
	var only []netip.Addr
	if q != "" {
		if addrs := s.unpublishedInfo.addrs[q]; len(addrs) > 0 {
			s.unpublishedHits.Add(1)
			if inRollout(s.unpublishedInfo.percent[q], r.RemoteAddr) {
				only = addrs
			} else {
				s.percentMiss.Add(1)
			}
		}
		if only == nil {
			if addrs, ok := s.publishedAddrs[q]; ok {
				if len(addrs) > 0 {
					s.publishedHits.Add(1)
				} else {
					s.publishedMisses.Add(1)
				}
			} else {
				s.unpublishedMisses.Add(1)
			}
		}
	}
	js := s.publishedJSON
	s.mu.Unlock()

	if only != nil {
		b, _ := json.MarshalIndent(toStrings(map[string][]netip.Addr{q: only}), "", "\t")
		w.Write(b)
		return
	}
	w.Write(js)
}

// inRollout reports whether the client at remoteAddr ("ip:port") gets a
// name rolled out to the fraction percent of clients. The draw is
// deterministic per client IP, so a client sees a stable answer, except
// that loopback clients flip a fresh coin (they are all the same address).
func inRollout(percent float64, remoteAddr string) bool {
	switch {
	case percent <= 0:
		return false
	case percent >= 1:
		return true
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	ip := ap.Addr()
	if ip.IsLoopback() {
		return rand.IntN(2) == 0
	}
	b := ip.As16()
	g := rand.New(rand.NewPCG(binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])))
	return percent > g.Float64()
}

// QueriedDomains returns how many distinct names have been queried since
// the set was last emptied.
func (s *Server) QueriedDomains() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queried)
}

// Vars returns the server's metrics under their reference expvar names,
// for the caller to publish at top level.
func (s *Server) Vars() map[string]expvar.Var {
	return map[string]expvar.Var{
		"counter_bootstrap_dns_requests":                   &s.requests,
		"counter_bootstrap_dns_published_hits":             &s.publishedHits,
		"counter_bootstrap_dns_published_misses":           &s.publishedMisses,
		"counter_bootstrap_dns_unpublished_hits":           &s.unpublishedHits,
		"counter_bootstrap_dns_unpublished_misses":         &s.unpublishedMisses,
		"counter_bootstrap_dns_unpublished_percent_misses": &s.percentMiss,
		"counter_bootstrap_dns_queried_domains":            expvar.Func(func() any { return s.QueriedDomains() }),
		"counter_bootstrap_dns_bad_queries":                &s.badQueries,
	}
}
