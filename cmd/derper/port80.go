package main

import (
	"net/http"
	"strings"
)

// port80Handler routes the plain-HTTP listener that runs next to HTTPS:
// the captive-portal check, ACME HTTP-01 (wrapped in by the certificate
// provider), debug pages, and a redirect to HTTPS for everything else.
func port80Handler(noContent, mainMux http.Handler, debugAllowed func(*http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/generate_204" {
			noContent.ServeHTTP(w, r)
			return
		}
		if strings.HasPrefix(r.RequestURI, "/debug") {
			mainMux.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "plain HTTP serves only /generate_204 and redirects for GET and HEAD; connect with https:// instead", http.StatusBadRequest)
			return
		}
		target := r.RequestURI
		if r.URL.Path == "/" && debugAllowed(r) {
			target = "/debug/"
		}
		// The Host header is used verbatim, port included, as the
		// reference does.
		http.Redirect(w, r, "https://"+r.Host+target, http.StatusFound)
	})
}
