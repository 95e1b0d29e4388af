package main

import (
	"bytes"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHomePage(t *testing.T) {
	tests := []struct {
		derpOn, allowed bool
		path            string
	}{
		{true, false, "/"},
		{false, false, "/derp/anything"},
		{true, true, "/x"},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		homeHandler(homeConfig{}, tt.derpOn, func(*http.Request) bool { return tt.allowed }).ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
		body := rec.Body.String()
		if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
			t.Errorf("%s: %d %q", tt.path, rec.Code, rec.Header().Get("Content-Type"))
		}
		if rec.Header().Get("X-Frame-Options") != "DENY" || rec.Header().Get("Strict-Transport-Security") == "" {
			t.Errorf("%s: browser headers missing", tt.path)
		}
		if !strings.Contains(body, "<h1>DERP</h1>") || !strings.Contains(body, "openderp") {
			t.Errorf("%s: page %q", tt.path, body)
		}
		if !strings.Contains(body, "docs/operating.md") {
			t.Errorf("%s: no link to the operator's guide", tt.path)
		}
		// Our own words: no claim to be Tailscale's server.
		if strings.Contains(strings.ToLower(body), "tailscale") {
			t.Errorf("%s: page mentions Tailscale", tt.path)
		}
		if got := strings.Contains(body, "<b>disabled</b>"); got == tt.derpOn {
			t.Errorf("%s: disabled shown = %v", tt.path, got)
		}
		if got := strings.Contains(body, "/debug/"); got != tt.allowed {
			t.Errorf("%s: debug link shown = %v", tt.path, got)
		}
		if !strings.HasSuffix(body, "</body></html>\n") {
			t.Errorf("%s: document not closed", tt.path)
		}
	}
	rec := httptest.NewRecorder()
	serveRobots(rec, httptest.NewRequest("GET", "/robots.txt", nil))
	if rec.Body.String() != "User-agent: *\nDisallow: /\n" || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("robots: %q", rec.Body)
	}
}

func TestHomeFlag(t *testing.T) {
	tests := []struct {
		flag     string
		err      string
		code     int
		location string
		body     string // "*" for the default page
	}{
		{"", "", 200, "", "*"},
		{"blank", "", 200, "", ""},
		{"https://example.com/about?x=1", "", 302, "https://example.com/about?x=1", "*redirect*"},
		{"http://example.com", "", 302, "http://example.com", "*redirect*"},
		{"ftp://example.com", `unknown --home value "ftp://example.com"`, 0, "", ""},
		{"Blank", `unknown --home value "Blank"`, 0, "", ""},
		{"/local", `unknown --home value "/local"`, 0, "", ""},
	}
	for _, tt := range tests {
		hc, err := parseHome(tt.flag)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%q: error %v, want %q", tt.flag, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tt.flag, err)
		}
		for _, path := range []string{"/", "/some/other/path"} {
			rec := httptest.NewRecorder()
			homeHandler(hc, true, func(*http.Request) bool { return false }).ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
			if rec.Code != tt.code || rec.Header().Get("Location") != tt.location {
				t.Errorf("%q %s: %d %q", tt.flag, path, rec.Code, rec.Header().Get("Location"))
			}
			if rec.Header().Get("X-Frame-Options") != "DENY" {
				t.Errorf("%q %s: browser headers missing", tt.flag, path)
			}
			body := rec.Body.String()
			switch tt.body {
			case "*":
				if !strings.Contains(body, "<h1>DERP</h1>") {
					t.Errorf("%q: body %q", tt.flag, body)
				}
			case "*redirect*":
				if !strings.Contains(body, "Found") {
					t.Errorf("%q: body %q", tt.flag, body)
				}
			default:
				if body != tt.body {
					t.Errorf("%q: body %q", tt.flag, body)
				}
			}
			if tt.code == 200 && rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
				t.Errorf("%q: content type %q", tt.flag, rec.Header().Get("Content-Type"))
			}
		}
	}
}

func TestPort80(t *testing.T) {
	noContent := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	mux := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("mux " + r.URL.Path)) })
	h := port80Handler(noContent, mux, func(r *http.Request) bool { return strings.HasPrefix(r.RemoteAddr, "127.") })
	tests := []struct {
		method, target, remote string
		code                   int
		loc, body              string
	}{
		{"GET", "/generate_204", "192.0.2.1:1", 204, "", ""},
		{"POST", "/generate_204", "192.0.2.1:1", 204, "", ""},
		{"GET", "/debug/vars", "192.0.2.1:1", 200, "", "mux /debug/vars"},
		{"POST", "/derp", "192.0.2.1:1", 400, "", "plain HTTP serves only /generate_204 and redirects for GET and HEAD; connect with https:// instead\n"},
		{"GET", "/derp?x=1", "192.0.2.1:1", 302, "https://derp.example:8080/derp?x=1", ""},
		{"HEAD", "/bootstrap-dns", "192.0.2.1:1", 302, "https://derp.example:8080/bootstrap-dns", ""},
		{"GET", "/", "192.0.2.1:1", 302, "https://derp.example:8080/", ""},
		{"GET", "/", "127.0.0.1:1", 302, "https://derp.example:8080/debug/", ""},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, tt.target, nil)
		r.Host = "derp.example:8080"
		r.RemoteAddr = tt.remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != tt.code || rec.Header().Get("Location") != tt.loc || (tt.body != "" && rec.Body.String() != tt.body) {
			t.Errorf("%s %s: %d loc %q body %q", tt.method, tt.target, rec.Code, rec.Header().Get("Location"), rec.Body)
		}
	}
}

func TestTLSMetrics(t *testing.T) {
	m := newTLSMetrics()
	var during string
	h := m.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			during = m.active.Get("1.3").String()
		}
	}))
	r := httptest.NewRequest("GET", "/", nil)
	r.TLS = &tls.ConnectionState{Version: tls.VersionTLS13}
	h.ServeHTTP(httptest.NewRecorder(), r)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if during != "1" || m.active.Get("1.3").String() != "0" {
		t.Errorf("active during %s, after %s", during, m.active.Get("1.3"))
	}
	if m.requests.Get("1.3").String() != "1" || m.requests.Get("unknown").String() != "1" {
		t.Errorf("requests %s", m.requests.String())
	}
	for v, want := range map[uint16]string{tls.VersionTLS10: "1.0", tls.VersionTLS11: "1.1", tls.VersionTLS12: "1.2", 0x9999: "unknown"} {
		if got := tlsVersionLabel(v); got != want {
			t.Errorf("label(%x) = %s", v, got)
		}
	}
}

func TestErrorLogFilter(t *testing.T) {
	var buf bytes.Buffer
	l := httpErrorLog(&buf)
	l.Print("http: TLS handshake error from 1.2.3.4:5: EOF")
	l.Print("http: TLS handshake error from 1.2.3.4:5: tls: first record does not look like a TLS handshake")
	l.Print("http: Accept error: too many open files")
	if got := buf.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "too many open files") {
		t.Errorf("log = %q", got)
	}
}

func TestMetricNames(t *testing.T) {
	m := newTLSMetrics().vars()
	if m["derper_tls_request_version"] == nil || m["gauge_derper_tls_active_version"] == nil || len(m) != 2 {
		t.Errorf("tls metrics: %v", m)
	}
	l := newLimitedListener(nil, 1, 1).expVar()
	if l.Get("counter_accepted_connections") == nil || l.Get("counter_rejected_connections") == nil {
		t.Errorf("tls_listener: %v", l)
	}
	rec := httptest.NewRecorder()
	withBrowserHeaders(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Header().Get("X-Frame-Options") != "DENY" {
		t.Error("browser headers missing")
	}
}

// FuzzParseHome: only "", "blank" and http(s) URLs are accepted, and a
// URL is redirected to verbatim.
func FuzzParseHome(f *testing.F) {
	for _, s := range []string{"", "blank", "https://x", "http://", "ftp://x", "BLANK"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hc, err := parseHome(s)
		isURL := strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
		if (err == nil) != (s == "" || s == "blank" || isURL) {
			t.Fatalf("%q: err %v", s, err)
		}
		if err == nil && isURL && hc.redirect != s {
			t.Fatalf("%q: redirect %q", s, hc.redirect)
		}
	})
}
