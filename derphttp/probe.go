package derphttp

import "net/http"

// ProbeHandler serves /derp/probe and /derp/latency-check, which clients
// without UDP time instead of STUN: GET and HEAD get an empty 200 that any
// web origin may read; other methods get 405.
func ProbeHandler(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.WriteHeader(http.StatusOK)
	default:
		http.Error(w, "method not allowed: the latency probe answers GET and HEAD only", http.StatusMethodNotAllowed)
	}
}

// Captive-portal check headers.
const (
	challengeHeader = "X-Tailscale-Challenge"
	responseHeader  = "X-Tailscale-Response"
	maxChallengeLen = 64
)

// noCacheValue keeps caches and proxies from answering captive-portal
// checks on the server's behalf.
const noCacheValue = "no-cache, no-store, must-revalidate, no-transform, max-age=0"

// ServeNoContent serves /generate_204, the captive-portal check: always
// 204 with no body, never cacheable. If the request carries a well-formed
// challenge (at most 64 bytes of letters, digits, '.', '_', ':' and '-'),
// the reply echoes it as "response <challenge>"; anything else is ignored
// rather than echoed, so the endpoint cannot be used to reflect arbitrary
// bytes. The query string is ignored.
func ServeNoContent(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", noCacheValue)
	if ch := r.Header.Get(challengeHeader); ch != "" && validChallenge(ch) {
		w.Header().Set(responseHeader, "response "+ch)
	}
	w.WriteHeader(http.StatusNoContent)
}

func validChallenge(s string) bool {
	if len(s) > maxChallengeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-', c == ':':
		default:
			return false
		}
	}
	return true
}
