package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/openderp/openderp/internal/debugweb"
)

// homePage is openderp's own front page. It keeps the parts tools look
// for: the "DERP" heading, the "Status: disabled" line and the link to
// /debug/ (both added below when they apply).
const homePage = `<html><body>
<h1>DERP</h1>
<p>
  This host runs a DERP relay built with openderp, an independent,
  open-source implementation of the DERP protocol.
</p>
<p>
  DERP clients that cannot reach each other directly send their
  end-to-end-encrypted packets through it; the relay cannot read them. It
  also answers STUN requests, so clients can learn their public address.
</p>
<p>
  There is nothing to see here with a browser. To run a relay like this
  one, see openderp's
  <a href="https://github.com/openderp/openderp/blob/main/docs/operating.md">operator's guide</a>;
  for the protocol and the Go packages, see the
  <a href="https://github.com/openderp/openderp">project's documentation</a>.
</p>
`

const homeEnd = "</body></html>\n"

// homeConfig is the -home setting: the built-in page, an empty page, or a
// redirect.
type homeConfig struct {
	blank    bool
	redirect string // non-empty: 302 to this URL
}

// parseHome interprets -home: "" for the built-in page, "blank" for an
// empty one, or an http:// or https:// URL to redirect to.
func parseHome(v string) (homeConfig, error) {
	switch {
	case v == "":
		return homeConfig{}, nil
	case v == "blank":
		return homeConfig{blank: true}, nil
	case strings.HasPrefix(v, "http://"), strings.HasPrefix(v, "https://"):
		return homeConfig{redirect: v}, nil
	}
	return homeConfig{}, fmt.Errorf("unknown --home value %q", v)
}

// homeHandler serves / and every path nothing else matches. derpOn says
// whether the relay runs; allowed tells debug-authorised clients, who get
// a link to /debug/.
func homeHandler(hc homeConfig, derpOn bool, allowed func(*http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		debugweb.AddBrowserHeaders(w.Header())
		if hc.redirect != "" {
			http.Redirect(w, r, hc.redirect, http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		if hc.blank {
			return
		}
		io.WriteString(w, homePage)
		if !derpOn {
			io.WriteString(w, "<p>Status: <b>disabled</b></p>\n")
		}
		if allowed(r) {
			io.WriteString(w, "<p>You may also see this relay's <a href='/debug/'>debug pages</a>.</p>\n")
		}
		io.WriteString(w, homeEnd)
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
