package bootstrapdns

import (
	"context"
	"encoding/json"
	"errors"
	"expvar"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
)

type fakeResolver struct {
	addrs map[string][]string
	txt   map[string][]string
	calls int
}

func (f *fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	f.calls++
	ss, ok := f.addrs[host]
	if !ok {
		return nil, errors.New("no such host")
	}
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

func (f *fakeResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	t, ok := f.txt[name]
	if !ok {
		return nil, errors.New("no TXT")
	}
	return t, nil
}

func get(t *testing.T, s *Server, target, remote string) (*httptest.ResponseRecorder, map[string][]string) {
	t.Helper()
	req := httptest.NewRequest("GET", target, nil)
	if remote != "" {
		req.RemoteAddr = remote
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	var m map[string][]string
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("body %q: %v", rec.Body, err)
		}
	}
	return rec, m
}

func counter(s *Server, name string) int64 {
	return s.Vars()[name].(*expvar.Int).Value()
}

func TestPublished(t *testing.T) {
	r := &fakeResolver{addrs: map[string][]string{
		"derp1.example.net": {"192.0.2.10", "2001:db8::10"},
		"derp2.example.net": {"192.0.2.20"},
	}}
	s := New("derp1.example.net,derp2.example.net,gone.example.net", "", r, t.Logf)

	rec, _ := get(t, s, "/bootstrap-dns", "")
	if rec.Code != 200 || rec.Body.Len() != 0 {
		t.Fatalf("before refresh: %d %q, want 200 and empty body", rec.Code, rec.Body)
	}
	s.Refresh(context.Background())
	rec, m := get(t, s, "/bootstrap-dns", "")
	if got := rec.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := rec.Header().Get("Connection"); got != "close" {
		t.Errorf("Connection = %q", got)
	}
	if len(m) != 2 {
		t.Fatalf("map = %v, want 2 names", m)
	}
	d1 := slices.Sorted(slices.Values(m["derp1.example.net"]))
	if !slices.Equal(d1, []string{"192.0.2.10", "2001:db8::10"}) {
		t.Errorf("derp1 = %v", d1)
	}
	if !strings.Contains(rec.Body.String(), "{\n\t\"derp1.example.net\": [\n\t\t") {
		t.Errorf("body not tab-indented: %q", rec.Body)
	}

	// A published name in q still gets the whole map.
	_, m = get(t, s, "/bootstrap-dns?q=derp2.example.net", "")
	if len(m) != 2 {
		t.Errorf("q=published: map = %v, want whole map", m)
	}
	get(t, s, "/bootstrap-dns?q=other.example.net", "")
	if got := counter(s, "counter_bootstrap_dns_published_hits"); got != 1 {
		t.Errorf("published_hits = %d", got)
	}
	if got := counter(s, "counter_bootstrap_dns_unpublished_misses"); got != 1 {
		t.Errorf("unpublished_misses = %d", got)
	}
	if got := counter(s, "counter_bootstrap_dns_requests"); got != 4 {
		t.Errorf("requests = %d", got)
	}
	if got := s.QueriedDomains(); got != 2 {
		t.Errorf("queried = %d", got)
	}
}

func TestAllFailedIsNull(t *testing.T) {
	s := New("a.example,b.example", "", &fakeResolver{}, nil)
	s.Refresh(context.Background())
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/bootstrap-dns", nil))
	if rec.Body.String() != "null" {
		t.Errorf("body = %q, want null", rec.Body)
	}
}

func TestUnpublished(t *testing.T) {
	r := &fakeResolver{
		addrs: map[string][]string{
			"pub.example":    {"192.0.2.1"},
			"full.example":   {"192.0.2.2"},
			"half.example":   {"192.0.2.3"},
			"none.example":   {"192.0.2.4"},
			"broken.example": {"192.0.2.5"},
		},
		txt: map[string][]string{
			"half-txt.example": {"junk", "101", "50"},
			"none-txt.example": {"0"},
		},
	}
	s := New("pub.example", "full.example,half.example/half-txt.example,none.example/none-txt.example,broken.example/missing.example", r, t.Logf)
	s.Refresh(context.Background())

	_, m := get(t, s, "/bootstrap-dns?q=full.example", "198.51.100.7:1234")
	if len(m) != 1 || m["full.example"][0] != "192.0.2.2" {
		t.Errorf("full rollout: %v", m)
	}
	for _, q := range []string{"none.example", "broken.example"} {
		_, m = get(t, s, "/bootstrap-dns?q="+q, "198.51.100.7:1234")
		if _, ok := m["pub.example"]; !ok || len(m) != 1 {
			t.Errorf("q=%s: %v, want the published map", q, m)
		}
	}
	if got := counter(s, "counter_bootstrap_dns_unpublished_percent_misses"); got != 2 {
		t.Errorf("percent_misses = %d, want 2", got)
	}
	if got := counter(s, "counter_bootstrap_dns_unpublished_hits"); got != 3 {
		t.Errorf("unpublished_hits = %d, want 3", got)
	}

	// 50%: deterministic per IP, and some IPs in and some out.
	in, out := 0, 0
	for i := range 64 {
		remote := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 1).String()
		a := inRollout(0.5, remote)
		if a != inRollout(0.5, remote) {
			t.Fatalf("rollout not deterministic for %s", remote)
		}
		_, m := get(t, s, "/bootstrap-dns?q=half.example", remote)
		if _, got := m["half.example"]; got != a {
			t.Errorf("%s: served %v, rollout says %v", remote, got, a)
		}
		if a {
			in++
		} else {
			out++
		}
	}
	if in == 0 || out == 0 {
		t.Errorf("50%% rollout gave in=%d out=%d", in, out)
	}
}

func TestInRolloutEdges(t *testing.T) {
	tests := []struct {
		p      float64
		remote string
		want   bool
	}{
		{0, "198.51.100.1:1", false},
		{1, "198.51.100.1:1", true},
		{1, "garbage", true},
		{0.5, "garbage", false},
		{0.999999, "[2001:db8::1]:1", true},
	}
	for _, tt := range tests {
		if got := inRollout(tt.p, tt.remote); got != tt.want {
			t.Errorf("inRollout(%v, %q) = %v, want %v", tt.p, tt.remote, got, tt.want)
		}
	}
}

func TestQueriedBounded(t *testing.T) {
	s := New("", "", &fakeResolver{}, nil)
	for i := range maxQueried + 1 {
		get(t, s, "/bootstrap-dns?q=n"+string(rune('a'+i%26))+strings.Repeat("x", i%200), "")
	}
	if got := s.QueriedDomains(); got != 0 {
		t.Errorf("queried = %d after overflow, want 0", got)
	}
}

func TestRunStops(t *testing.T) {
	r := &fakeResolver{addrs: map[string][]string{"a.example": {"192.0.2.1"}}}
	s := New("a.example", "", r, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	cancel()
	<-done
	New("", "", r, nil).Run(context.Background()) // nothing configured: returns at once
}

var _ http.Handler = (*Server)(nil)

// TestQueryRefused is the regression test for unbounded ?q= names: a name
// longer than a DNS name, or with bytes no host name has, gets 400, is
// counted and is not remembered.
func TestQueryRefused(t *testing.T) {
	tests := []struct {
		name string
		q    string
		want int
	}{
		{"max length", strings.Repeat("a", MaxQueryLen), http.StatusOK},
		{"one too long", strings.Repeat("a", MaxQueryLen+1), http.StatusBadRequest},
		{"one MiB", strings.Repeat("a", 1<<20), http.StatusBadRequest},
		{"space", "a%20b", http.StatusBadRequest},
		{"NUL", "a%00b", http.StatusBadRequest},
		{"non-ASCII", "%C3%A9.example", http.StatusBadRequest},
		{"ordinary", "derp1.example.com.", http.StatusOK},
		{"empty", "", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New("", "", &fakeResolver{}, nil)
			req := httptest.NewRequest("GET", "/bootstrap-dns?q="+tt.q, nil)
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("status = %d, want %d", rec.Code, tt.want)
			}
			bad := tt.want == http.StatusBadRequest
			if got := counter(s, "counter_bootstrap_dns_bad_queries"); got != map[bool]int64{true: 1}[bad] {
				t.Errorf("bad_queries = %d", got)
			}
			if bad && s.QueriedDomains() != 0 {
				t.Errorf("refused name was remembered")
			}
		})
	}
}

// FuzzQuery checks that whatever ?q= holds, the handler answers 200 or
// 400, never remembers a name longer than MaxQueryLen, and keeps the set of
// names bounded.
func FuzzQuery(f *testing.F) {
	f.Add("derp.example.com")
	f.Add(strings.Repeat("x", 300))
	f.Add("a b\x00")
	s := New("", "a.example", &fakeResolver{addrs: map[string][]string{"a.example": {"192.0.2.1"}}}, nil)
	s.Refresh(context.Background())
	f.Fuzz(func(t *testing.T, q string) {
		req := httptest.NewRequest("GET", "/bootstrap-dns", nil)
		req.URL.RawQuery = "q=" + url.QueryEscape(q)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			if !validQuery(q) {
				t.Fatalf("accepted invalid %q", q)
			}
		case http.StatusBadRequest:
			if validQuery(q) {
				t.Fatalf("refused valid %q", q)
			}
		default:
			t.Fatalf("status %d", rec.Code)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.queried) > maxQueried {
			t.Fatalf("%d names remembered", len(s.queried))
		}
		for n := range s.queried {
			if len(n) > MaxQueryLen {
				t.Fatalf("remembered %d-byte name", len(n))
			}
		}
	})
}
