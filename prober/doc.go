// Package prober runs named health checks ("probes") on a schedule and
// reports their results as Prometheus metrics, an HTML status page and
// JSON.
//
// A Prober owns a set of probes. Run registers one: a ProbeFunc started
// every interval, each run on its own goroutine, with a context that
// expires after 80% of the interval. Runs of one probe never overlap; a
// run that cannot start within one interval is skipped. A negative
// interval makes a probe continuous: it runs with no deadline until it
// returns and starts again after the pause. With spreading on, a periodic
// probe's first run is delayed by a fraction of its interval derived from
// its name, so that many probes created together do not all fire at once.
// In once mode each probe runs a single time; Wait returns when all have
// finished, and ProbeInfo reports what they found.
//
// A Prober is a prometheus.Collector: register it on a registry to export
// every probe's metrics (interval_secs, in_flight, start_secs, end_secs,
// result, latency_millis, attempts_total and seconds_total) under the
// Prober's namespace. StatusHandler serves the status page, RunHandler
// runs one probe on request and RunAllHandler runs them all.
//
// DERP wires the probes of a DERP deployment: it reads a DERP map and
// keeps one TLS and STUN probe per node and one mesh, bandwidth and
// queuing-delay probe per ordered node pair, adding and removing them as
// the map changes. Bandwidth probes can carry TCP over a TUN device
// (OpenTUN, Linux).
//
// Close stops every probe and waits for its goroutines; no goroutine
// started by this package outlives it.
package prober
