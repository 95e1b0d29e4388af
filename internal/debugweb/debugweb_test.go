package debugweb

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAllowed(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "debugkey")
	if err := os.WriteFile(keyFile, []byte("  s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	trusted := Env{TrustedCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::1/64")}}
	tests := []struct {
		name   string
		env    Env
		method string
		target string
		remote string
		xff    string
		want   bool
	}{
		{"loopback v4", Env{}, "GET", "/debug/", "127.0.0.1:5000", "", true},
		{"loopback v4 other", Env{}, "GET", "/debug/", "127.8.9.1:5000", "", true},
		{"loopback v6", Env{}, "GET", "/debug/", "[::1]:5000", "", true},
		{"cgnat", Env{}, "GET", "/debug/", "100.64.0.1:1", "", true},
		{"cgnat top", Env{}, "GET", "/debug/", "100.127.255.254:1", "", true},
		{"chromeos vm", Env{}, "GET", "/debug/", "100.115.92.5:1", "", false},
		{"just outside cgnat", Env{}, "GET", "/debug/", "100.128.0.1:1", "", false},
		{"tailscale ula", Env{}, "GET", "/debug/", "[fd7a:115c:a1e0::1]:1", "", true},
		{"other ula", Env{}, "GET", "/debug/", "[fd7a:115c:a1e1::1]:1", "", false},
		{"mapped cgnat", Env{}, "GET", "/debug/", "[::ffff:100.64.0.1]:1", "", true},
		{"public", Env{}, "GET", "/debug/", "203.0.113.9:1", "", false},
		{"loopback behind proxy", Env{}, "GET", "/debug/", "127.0.0.1:1", "203.0.113.9", false},
		{"allow ip", Env{AllowIP: "203.0.113.9"}, "GET", "/debug/", "203.0.113.9:1", "", true},
		{"allow ip behind proxy", Env{AllowIP: "203.0.113.9"}, "GET", "/debug/", "203.0.113.9:1", "x", false},
		{"debug key", Env{DebugKeyPath: keyFile}, "GET", "/debug/?debugkey=s3cret", "203.0.113.9:1", "x", true},
		{"wrong debug key", Env{DebugKeyPath: keyFile}, "GET", "/debug/?debugkey=nope", "203.0.113.9:1", "", false},
		{"debug key POST", Env{DebugKeyPath: keyFile}, "POST", "/debug/?debugkey=s3cret", "203.0.113.9:1", "", false},
		{"empty debug key", Env{DebugKeyPath: keyFile}, "GET", "/debug/?debugkey=", "203.0.113.9:1", "", false},
		{"missing key file", Env{DebugKeyPath: keyFile + "x"}, "GET", "/debug/?debugkey=s3cret", "203.0.113.9:1", "", false},
		{"garbage remote", Env{}, "GET", "/debug/", "garbage", "", false},
		{"trusted cidr", trusted, "GET", "/debug/", "10.1.2.3:1", "", true},
		{"trusted cidr v6", trusted, "GET", "/debug/", "[2001:db8::5]:1", "", true},
		{"trusted cidr mapped", trusted, "GET", "/debug/", "[::ffff:10.1.2.3]:1", "", true},
		{"outside trusted cidr", trusted, "GET", "/debug/", "11.1.2.3:1", "", false},
		{"trusted cidr behind proxy", trusted, "GET", "/debug/", "10.1.2.3:1", "x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, nil)
			r.RemoteAddr = tt.remote
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			if got := tt.env.Allowed(r); got != tt.want {
				t.Errorf("Allowed = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIsTailscaleIP(t *testing.T) {
	for s, want := range map[string]bool{"100.100.100.100": true, "100.63.255.255": false, "fd7a:115c:a1e0:ab12::1": true, "10.0.0.1": false} {
		if got := IsTailscaleIP(netip.MustParseAddr(s)); got != want {
			t.Errorf("IsTailscaleIP(%s) = %v", s, got)
		}
	}
}

func serve(h http.Handler, target, remote string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", target, nil)
	r.RemoteAddr = remote
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func TestPages(t *testing.T) {
	mux := http.NewServeMux()
	d := New(mux, "derper", "1.2.3", Env{}, true)
	d.KV("TLS hostname", "derp.example")
	d.Handle("check", "Consistency check", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))

	rec := serve(mux, "/debug/", "127.0.0.1:1")
	body := rec.Body.String()
	if rec.Code != 200 || !strings.Contains(body, "<title>derper debug</title>") {
		t.Fatalf("index: %d %s", rec.Code, body)
	}
	order := []string{"Uptime", "Version", "TLS hostname", "/debug/vars", "/debug/runtime-metrics", "/debug/varz", "/debug/pprof/", "goroutine?debug=1", "goroutine?debug=2", "/debug/gc", "/debug/check"}
	last := -1
	for _, s := range order {
		i := strings.Index(body, s)
		if i <= last {
			t.Errorf("%q out of order or missing in index", s)
		}
		last = i
	}
	if got := rec.Header().Get("Content-Security-Policy"); !strings.HasSuffix(got, "; style-src 'self' 'unsafe-inline'") {
		t.Errorf("CSP = %q", got)
	}

	for _, p := range []string{"/debug/vars", "/debug/varz", "/debug/pprof/", "/debug/gc", "/debug/check", "/debug/pprof/goroutine?debug=1"} {
		if rec := serve(mux, p, "[::1]:1"); rec.Code != 200 {
			t.Errorf("%s from loopback: %d", p, rec.Code)
		}
		rec := serve(mux, p, "198.51.100.1:1")
		if rec.Code != 403 || !strings.HasPrefix(rec.Body.String(), "debug pages are not open to this address") {
			t.Errorf("%s from public: %d %q", p, rec.Code, rec.Body)
		}
	}
	if rec := serve(mux, "/debug/check", "198.51.100.1:1"); !strings.Contains(rec.Body.String(), "run with TS_ALLOW_DEBUG_IP=198.51.100.1") {
		t.Errorf("dev hint missing: %q", rec.Body)
	}
	if rec := serve(mux, "/debug/gc", "127.0.0.1:1"); rec.Body.String() != "garbage collection started\ngarbage collection finished\n" {
		t.Errorf("gc body %q", rec.Body)
	}
	if rec := serve(mux, "/debug", "127.0.0.1:1"); rec.Code/100 != 3 || rec.Header().Get("Location") != "/debug/" {
		t.Errorf("/debug: %d, want redirect", rec.Code)
	}
}

func TestParseTrustedCIDRs(t *testing.T) {
	tests := []struct {
		in   string
		want string // prefixes joined by " ", or "error"
	}{
		{"", ""},
		{" , ,", ""},
		{"10.0.0.0/8", "10.0.0.0/8"},
		{" 10.0.0.0/8 ,192.168.1.7/16,, fd00::/8 ", "10.0.0.0/8 192.168.1.7/16 fd00::/8"},
		{"10.0.0.0", "error"},
		{"10.0.0.0/8,nonsense", "error"},
		{"10.0.0.0/33", "error"},
	}
	for _, tt := range tests {
		ps, err := ParseTrustedCIDRs(tt.in)
		var got string
		if err != nil {
			got = "error"
			if !strings.Contains(err.Error(), "invalid CIDR in TS_DEBUG_TRUSTED_CIDRS") {
				t.Errorf("%q: error %q lacks the variable name", tt.in, err)
			}
		} else {
			var parts []string
			for _, p := range ps {
				parts = append(parts, p.String())
			}
			got = strings.Join(parts, " ")
		}
		if got != tt.want {
			t.Errorf("ParseTrustedCIDRs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestEnvFromOSTrustedCIDRs(t *testing.T) {
	t.Setenv("TS_DEBUG_TRUSTED_CIDRS", "10.0.0.0/8")
	e, err := EnvFromOS()
	if err != nil || len(e.TrustedCIDRs) != 1 {
		t.Errorf("EnvFromOS = %+v, %v", e, err)
	}
	t.Setenv("TS_DEBUG_TRUSTED_CIDRS", "10.0.0.0/8,bad")
	if _, err := EnvFromOS(); err == nil {
		t.Error("bad TS_DEBUG_TRUSTED_CIDRS accepted")
	}
}

// FuzzParseTrustedCIDRs checks that every accepted list yields only valid
// prefixes, one per non-blank entry, and that parsing never panics.
func FuzzParseTrustedCIDRs(f *testing.F) {
	for _, s := range []string{"", "10.0.0.0/8", " 1.2.3.4/32 , ::/0", "x", ",,", "1.2.3.4/99"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := ParseTrustedCIDRs(s)
		if err != nil {
			return
		}
		n := 0
		for _, e := range strings.Split(s, ",") {
			if strings.TrimSpace(e) != "" {
				n++
			}
		}
		if len(ps) != n {
			t.Fatalf("%d prefixes from %d entries", len(ps), n)
		}
		for _, p := range ps {
			if !p.IsValid() {
				t.Fatalf("invalid prefix %v", p)
			}
		}
	})
}

func TestRuntimeMetrics(t *testing.T) {
	mux := http.NewServeMux()
	New(mux, "derper", "1", Env{}, false)
	get := func(target, accept string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", target, nil)
		r.RemoteAddr = "127.0.0.1:1"
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, r)
		return rec
	}
	const gor = "/sched/goroutines:goroutines"
	tests := []struct {
		target, accept string
		code           int
		ctype, has     string
	}{
		{"/debug/runtime-metrics", "", 200, "text/plain; charset=utf-8", gor + "\n"},
		{"/debug/runtime-metrics", "text/html,*/*", 200, "text/html; charset=utf-8", "<a href=\"/debug/runtime-metrics" + gor + "\">"},
		{"/debug/runtime-metrics?format=text", "text/html", 200, "text/plain; charset=utf-8", gor},
		{"/debug/runtime-metrics?format=html", "", 200, "text/html; charset=utf-8", "<h1>"},
		{"/debug/runtime-metrics?name=" + gor, "", 200, "application/json", `{"` + gor + `":`},
		{"/debug/runtime-metrics?name=/sched/*&name=" + gor, "", 200, "application/json", `"` + gor + `":`},
		{"/debug/runtime-metrics?name=/gc/pauses:seconds", "", 200, "application/json", `"buckets":[`},
		{"/debug/runtime-metrics?name=/no/such:thing", "", 404, "", ""},
		{"/debug/runtime-metrics" + gor, "", 200, "application/json", ""},
		{"/debug/runtime-metrics/no/such:thing", "", 404, "", ""},
	}
	for _, tt := range tests {
		rec := get(tt.target, tt.accept)
		if rec.Code != tt.code {
			t.Errorf("%s: %d, want %d", tt.target, rec.Code, tt.code)
			continue
		}
		if tt.code != 200 {
			continue
		}
		if rec.Header().Get("Content-Type") != tt.ctype || !strings.Contains(rec.Body.String(), tt.has) {
			t.Errorf("%s: %q %.200q", tt.target, rec.Header().Get("Content-Type"), rec.Body)
		}
		if tt.ctype == "application/json" {
			var v any
			if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
				t.Errorf("%s: bad JSON: %v", tt.target, err)
			}
		}
	}
	var n float64
	if err := json.Unmarshal(get("/debug/runtime-metrics"+gor, "").Body.Bytes(), &n); err != nil || n < 1 {
		t.Errorf("bare value: %v %v", n, err)
	}
	if rec := serve(mux, "/debug/runtime-metrics", "198.51.100.1:1"); rec.Code != 403 {
		t.Errorf("public access: %d", rec.Code)
	}
}
