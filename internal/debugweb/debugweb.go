package debugweb

import (
	"expvar"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"time"

	"github.com/openderp/openderp/internal/varz"
)

var processStart = time.Now()

type kv struct{ k, v string }

type link struct{ href, desc string }

// Debugger is the set of debug pages mounted on a ServeMux. Register
// pages before serving; it is not safe to register concurrently with
// requests.
type Debugger struct {
	mux     *http.ServeMux
	name    string // binary name, for the index title
	env     Env
	dev     bool // append the TS_ALLOW_DEBUG_IP hint to denials
	version string
	kvs     []kv
	links   []link
}

// New mounts the standard debug pages on mux and returns the Debugger
// for adding more. name titles the index; version is shown on it; dev
// makes denials explain how to allow access.
func New(mux *http.ServeMux, name, version string, env Env, dev bool) *Debugger {
	d := &Debugger{mux: mux, name: name, env: env, dev: dev, version: version}
	mux.Handle("/debug/", d.protect(http.HandlerFunc(d.serveIndex), false))
	d.Handle("vars", "expvar variables (JSON)", expvar.Handler())
	d.Handle("runtime-metrics", "Go runtime metrics", http.HandlerFunc(serveRuntimeMetrics))
	d.HandleSilent("runtime-metrics/", http.HandlerFunc(serveRuntimeMetrics))
	d.Handle("varz", "Prometheus metrics", http.HandlerFunc(varz.CombinedHandler))
	d.Handle("pprof/", "profiles (pprof)", http.HandlerFunc(pprof.Index))
	// Named profiles under pprof/ are served by pprof.Index; these are the
	// handlers it does not cover.
	d.HandleSilent("pprof/cmdline", http.HandlerFunc(pprof.Cmdline))
	d.HandleSilent("pprof/profile", http.HandlerFunc(pprof.Profile))
	d.HandleSilent("pprof/symbol", http.HandlerFunc(pprof.Symbol))
	d.HandleSilent("pprof/trace", http.HandlerFunc(pprof.Trace))
	d.links = append(d.links,
		link{"/debug/pprof/goroutine?debug=1", "goroutine stacks, grouped"},
		link{"/debug/pprof/goroutine?debug=2", "goroutine stacks, one by one"})
	d.Handle("gc", "run a garbage collection now", http.HandlerFunc(serveGC))
	return d
}

// KV adds a key/value line to the index page.
func (d *Debugger) KV(k string, v any) {
	d.kvs = append(d.kvs, kv{k, fmt.Sprint(v)})
}

// Handle registers h at /debug/<slug>, access-controlled, and links it
// from the index with desc.
func (d *Debugger) Handle(slug, desc string, h http.Handler) {
	d.HandleSilent(slug, h)
	d.links = append(d.links, link{"/debug/" + slug, desc})
}

// HandleSilent registers h at /debug/<slug> without an index link.
func (d *Debugger) HandleSilent(slug string, h http.Handler) {
	d.mux.Handle("/debug/"+slug, d.protect(h, true))
}

// Allowed reports whether r passes the debug access check.
func (d *Debugger) Allowed(r *http.Request) bool { return d.env.Allowed(r) }

func (d *Debugger) protect(h http.Handler, registered bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !d.env.Allowed(r) {
			msg := "debug pages are not open to this address"
			if d.dev && registered {
				msg += "; to open them to it, run with TS_ALLOW_DEBUG_IP=" + remoteIP(r)
			}
			http.Error(w, msg, http.StatusForbidden)
			return
		}
		addDebugHeaders(w.Header())
		h.ServeHTTP(w, r)
	})
}

func remoteIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

func (d *Debugger) serveIndex(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/debug/" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	title := html.EscapeString(d.name) + " debug"
	fmt.Fprintf(w, "<html><head><title>%s</title><style>body{font-family:monospace}</style></head><body>\n<h1>%s</h1>\n<ul>\n", title, title)
	items := []kv{{"Uptime", time.Since(processStart).Round(time.Second).String()}, {"Version", d.version}}
	if h, err := os.Hostname(); err == nil {
		items = append(items, kv{"Machine", h})
	}
	for _, it := range append(items, d.kvs...) {
		fmt.Fprintf(w, "<li><b>%s:</b> %s</li>\n", html.EscapeString(it.k), html.EscapeString(it.v))
	}
	fmt.Fprint(w, "</ul>\n<ul>\n")
	for _, l := range d.links {
		fmt.Fprintf(w, "<li><a href=\"%s\">%s</a></li>\n", html.EscapeString(l.href), html.EscapeString(l.desc))
	}
	fmt.Fprint(w, "</ul>\n</body></html>\n")
}

func serveGC(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, "garbage collection started\n")
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	runtime.GC()
	fmt.Fprint(w, "garbage collection finished\n")
}
