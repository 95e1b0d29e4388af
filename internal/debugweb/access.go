package debugweb

import (
	"fmt"
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

	// TrustedCIDRs (TS_DEBUG_TRUSTED_CIDRS) are further allowed remote
	// networks; see ParseTrustedCIDRs.
	TrustedCIDRs []netip.Prefix
}

// EnvFromOS reads Env from the process environment. It fails if
// TS_DEBUG_TRUSTED_CIDRS does not parse, so that a daemon can refuse to
// start rather than fail on its first debug request as the reference does.
func EnvFromOS() (Env, error) {
	cidrs, err := ParseTrustedCIDRs(os.Getenv("TS_DEBUG_TRUSTED_CIDRS"))
	if err != nil {
		return Env{}, err
	}
	return Env{
		DebugKeyPath: os.Getenv("TS_DEBUG_KEY_PATH"),
		AllowIP:      os.Getenv("TS_ALLOW_DEBUG_IP"),
		TrustedCIDRs: cidrs,
	}, nil
}

// ParseTrustedCIDRs parses a comma-separated list of IP prefixes such as
// "10.0.0.0/8, 192.168.0.0/16". Whitespace around entries is ignored, as
// are empty entries; prefixes need not be masked. The error names the
// first bad entry.
func ParseTrustedCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		p, err := netip.ParsePrefix(e)
		if err != nil {
			return nil, fmt.Errorf("invalid CIDR in TS_DEBUG_TRUSTED_CIDRS: %q: %w", e, err)
		}
		out = append(out, p)
	}
	return out, nil
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
	if ip.IsLoopback() || IsTailscaleIP(ip) {
		return true
	}
	for _, p := range e.TrustedCIDRs {
		if p.Contains(ip) || p.Contains(ip.Unmap()) {
			return true
		}
	}
	return false
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
