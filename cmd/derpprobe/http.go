package main

import (
	"fmt"
	"html"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/openderp/openderp/prober"
)

// newMux routes derpprobe's HTTP endpoints: the status page on every
// path not under /debug/, and the access-controlled debug pages.
func newMux(p *prober.Prober, reg *prometheus.Registry, logger *log.Logger) *http.ServeMux {
	mux := http.NewServeMux()
	status := p.StatusHandler("DERP Prober")
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logger.Printf("%s %s %s", r.RemoteAddr, r.Method, r.URL)
		status.ServeHTTP(w, r)
	}))
	// Liveness only: open to all, and says nothing of probe health.
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	})
	debug := func(path string, h http.Handler) { mux.Handle(path, debugOnly(h)) }
	debug("/debug/", http.HandlerFunc(debugIndex))
	debug(prober.RunPath, http.HandlerFunc(p.RunHandler))
	debug(prober.RunAllPath, http.HandlerFunc(p.RunAllHandler))
	debug(prober.MetricsPath, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	debug("/debug/pprof/", http.HandlerFunc(pprof.Index))
	debug("/debug/pprof/cmdline", http.HandlerFunc(pprof.Cmdline))
	debug("/debug/pprof/profile", http.HandlerFunc(pprof.Profile))
	debug("/debug/pprof/symbol", http.HandlerFunc(pprof.Symbol))
	debug("/debug/pprof/trace", http.HandlerFunc(pprof.Trace))
	return mux
}

func debugIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<html><head><title>derpprobe debug</title></head><body><h1>derpprobe debug</h1><ul>")
	for _, l := range []string{prober.MetricsPath, prober.RunAllPath, "/debug/pprof/"} {
		fmt.Fprintf(w, "<li><a href=\"%s\">%s</a></li>", l, html.EscapeString(l))
	}
	fmt.Fprintf(w, "</ul></body></html>\n")
}

// debugOnly lets through only requests allowed to see debug pages.
func debugOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowDebug(r) {
			http.Error(w, "debug pages are not open to this address", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

var (
	tailscaleV4     = netip.MustParsePrefix("100.64.0.0/10")
	tailscaleV4Hole = netip.MustParsePrefix("100.115.92.0/23")
	tailscaleV6     = netip.MustParsePrefix("fd7a:115c:a1e0::/48")
)

// allowDebug applies the reference's debug access rule: a matching debug
// key, or a direct (unproxied) request from loopback, a Tailscale address
// or TS_ALLOW_DEBUG_IP.
func allowDebug(r *http.Request) bool {
	if r.Method == http.MethodGet {
		if path := os.Getenv("TS_DEBUG_KEY_PATH"); path != "" {
			if want, err := os.ReadFile(path); err == nil {
				k := strings.TrimSpace(string(want))
				if got := r.URL.Query().Get("debugkey"); k != "" && got == k {
					return true
				}
			}
		}
	}
	if r.Header.Get("X-Forwarded-For") != "" {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	if allow := os.Getenv("TS_ALLOW_DEBUG_IP"); allow != "" && host == allow {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	return ip.IsLoopback() ||
		(tailscaleV4.Contains(ip) && !tailscaleV4Hole.Contains(ip)) ||
		tailscaleV6.Contains(ip)
}
