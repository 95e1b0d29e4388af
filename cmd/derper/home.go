package main

import (
	"io"
	"net/http"

	"github.com/openderp/openderp/internal/debugweb"
)

const homeHead = `<html><body>
<h1>DERP</h1>
<p>
  This is a <a href="https://tailscale.com/">Tailscale</a> DERP server.
</p>
<p>
  Documentation:
</p>
<ul>
  <li><a href="https://tailscale.com/kb/1232/derp-servers">About DERP</a></li>
  <li><a href="https://pkg.go.dev/tailscale.com/derp">Protocol &amp; Go docs</a></li>
  <li><a href="https://github.com/tailscale/tailscale/tree/main/cmd/derper#derp">How to run a DERP server</a></li>
</ul>
`

// homeHandler serves / and every path nothing else matches, with 200.
// derpOn says whether the relay runs; allowed tells debug-authorised
// clients, who get a link to /debug/.
func homeHandler(derpOn bool, allowed func(*http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		debugweb.AddBrowserHeaders(w.Header())
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, homeHead)
		if !derpOn {
			io.WriteString(w, "<p>Status: <b>disabled</b></p>\n")
		}
		if allowed(r) {
			io.WriteString(w, "<p>Debug info at <a href='/debug/'>/debug/</a>.</p>\n")
		}
	})
}

// serveRobots keeps crawlers away.
func serveRobots(w http.ResponseWriter, r *http.Request) {
	debugweb.AddBrowserHeaders(w.Header())
	io.WriteString(w, "User-agent: *\nDisallow: /\n")
}

// withBrowserHeaders adds the browser security headers before h runs.
func withBrowserHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		debugweb.AddBrowserHeaders(w.Header())
		h.ServeHTTP(w, r)
	})
}
