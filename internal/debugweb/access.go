package debugweb

import (
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
)

// Tailscale address ranges trusted for debug access.
var (
	cgnatRange      = netip.MustParsePrefix("100.64.0.0/10")
	chromeOSVMRange = netip.MustParsePrefix("100.115.92.0/23") // inside CGNAT but not Tailscale
	tailscaleULA    = netip.MustParsePrefix("fd7a:115c:a1e0::/48")
)

// Env holds the environment that controls debug access. The zero value
// allows loopback and Tailscale addresses only.
type Env struct {
	DebugKeyPath string // TS_DEBUG_KEY_PATH: file holding the debug key
	AllowIP      string // TS_ALLOW_DEBUG_IP: one extra allowed remote IP, compared textually
}

// EnvFromOS reads Env from the process environment.
func EnvFromOS() Env {
	return Env{
		DebugKeyPath: os.Getenv("TS_DEBUG_KEY_PATH"),
		AllowIP:      os.Getenv("TS_ALLOW_DEBUG_IP"),
	}
}

// IsTailscaleIP reports whether ip is in Tailscale's CGNAT range (minus
// the ChromeOS VM block) or its IPv6 ULA prefix.
func IsTailscaleIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.Is4() {
		return cgnatRange.Contains(ip) && !chromeOSVMRange.Contains(ip)
	}
	return tailscaleULA.Contains(ip)
}

// Allowed reports whether r may see debug pages.
func (e Env) Allowed(r *http.Request) bool {
	if e.keyMatches(r) {
		return true
	}
	if r.Header.Get("X-Forwarded-For") != "" {
		// A proxy in front hides the real client; trust nothing.
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	if e.AllowIP != "" && host == e.AllowIP {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return ip.IsLoopback() || IsTailscaleIP(ip)
}

func (e Env) keyMatches(r *http.Request) bool {
	if r.Method != http.MethodGet || e.DebugKeyPath == "" {
		return false
	}
	got := r.URL.Query().Get("debugkey")
	if got == "" {
		return false
	}
	b, err := os.ReadFile(e.DebugKeyPath)
	if err != nil {
		return false
	}
	want := strings.TrimSpace(string(b))
	return want != "" && got == want
}

// AddBrowserHeaders sets the security headers sent with pages a browser
// may render.
func AddBrowserHeaders(h http.Header) {
	h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
}

const csp = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'; block-all-mixed-content; object-src 'none'"

// addDebugHeaders is AddBrowserHeaders with inline styles allowed.
func addDebugHeaders(h http.Header) {
	AddBrowserHeaders(h)
	h.Set("Content-Security-Policy", csp+"; style-src 'self' 'unsafe-inline'")
}
