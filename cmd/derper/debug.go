package main

import (
	"fmt"
	"net/http"
	"runtime"
	"strconv"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/internal/debugweb"
)

// addDebugPages registers derper's own pages and index lines.
func addDebugPages(d *debugweb.Debugger, s *derp.Server, hostname string) {
	d.KV("TLS hostname", hostname)
	d.KV("Mesh key", s.HasMeshKey())
	d.Handle("check", "check the relay's internal consistency", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.ConsistencyCheck(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "consistency check passed\n")
	}))
	d.Handle("traffic", "bytes per client connection (JSON stream, Linux ss)", http.HandlerFunc(s.ServeDebugTraffic))
	addClientsPage(d, s)
	d.Handle("set-mutex-profile-fraction", "set the mutex profile fraction (needs Sec-Debug: derp)", http.HandlerFunc(serveSetMutexFraction))
}

// serveSetMutexFraction changes the mutex profile rate. The custom header
// keeps a stray link or crawler from flipping it.
func serveSetMutexFraction(w http.ResponseWriter, r *http.Request) {
	s := r.FormValue("rate")
	if s == "" || r.Header.Get("Sec-Debug") != "derp" {
		http.Error(w, "usage: curl -H 'Sec-Debug: derp' '<this URL>?rate=N' sets the mutex profile fraction to N", http.StatusBadRequest)
		return
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		http.Error(w, "rate must be an integer", http.StatusBadRequest)
		return
	}
	old := runtime.SetMutexProfileFraction(v)
	fmt.Fprintf(w, "mutex profile fraction: was %d, now %d\n", old, v)
}
