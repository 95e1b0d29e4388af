// Package debugweb serves access-controlled debug pages under /debug/: an
// index, expvar JSON, Prometheus metrics, pprof and a GC trigger, plus
// pages registered by the program.
//
// Only requests from loopback or Tailscale addresses, without an
// X-Forwarded-For header, or carrying the debug key named by
// TS_DEBUG_KEY_PATH, are served; others get 403.
package debugweb
