package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/openderp/openderp/internal/varz"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// health is what /healthz on the metrics listener reports. It starts
// healthy; a feature that wants load balancers to stop sending clients
// (a graceful restart, say) calls SetHealthy(false).
type health struct {
	unhealthy atomic.Bool
}

// SetHealthy sets what /healthz answers from now on.
func (h *health) SetHealthy(ok bool) { h.unhealthy.Store(!ok) }

// ServeHTTP answers 200 "ok" while healthy and 503 otherwise.
func (h *health) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if h.unhealthy.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "unhealthy\n")
		return
	}
	io.WriteString(w, "ok\n")
}

// metricsHandler serves /metrics and /healthz and nothing else: no
// /debug/, so a scraper needs no debug access. /metrics holds the Go and
// process collectors of a registry of its own followed by every
// published expvar variable (derp, STUN, TLS, listener...), converted
// exactly as /debug/varz converts them.
func metricsHandler(h *health, errLog *log.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(prometheus.Gatherers{reg, varz.ExpvarGatherer{}}, promhttp.HandlerOpts{
		ErrorLog:      errLog,
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.Handle("GET /healthz", h)
	return mux
}

// startMetrics listens on addr and serves metricsHandler there until ctx
// ends. The returned function waits for the server to stop; call it after
// ctx is done.
func startMetrics(ctx context.Context, addr string, h *health, logf func(string, ...any), errLog io.Writer) (wait func(), err error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("derper: metrics listener: %w", err)
	}
	el := httpErrorLog(errLog)
	srv := &http.Server{
		Handler:      metricsHandler(h, el),
		ReadTimeout:  readTimeout,
		WriteTimeout: writeTimeout,
		ErrorLog:     el,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logf("derper: metrics: %v", err)
		}
	}()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
		case <-done:
		}
		srv.Close()
	}()
	logf("derper: metrics and /healthz on http://%s (openderp -metrics-addr)", ln.Addr())
	return func() { <-stopped; <-done }, nil
}
