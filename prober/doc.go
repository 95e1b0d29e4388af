// Package prober runs named health checks ("probes") on a schedule and
// reports their results as Prometheus metrics, an HTML status page and
// JSON.
//
// A Prober owns a set of probes. Run registers one: a ProbeFunc called
// every interval with a context that expires after 80% of the interval.
// With spreading on, a probe's first run is delayed by a fraction of its
// interval derived from its name, so that many probes created together do
// not all fire at once. In once mode each probe runs a single time; Wait
// returns when all have finished, and ProbeInfo reports what they found.
//
// A Prober is a prometheus.Collector: register it on a registry to export
// every probe's metrics (interval_secs, start_secs, end_secs, result,
// latency_millis, attempts_total and seconds_total) under the Prober's
// namespace. StatusHandler serves the status page and RunHandler runs one
// probe on request.
//
// DERP wires the probes of a DERP deployment: it reads a DERP map and
// keeps one TLS, STUN, mesh and bandwidth probe per node or node pair,
// adding and removing them as the map changes.
//
// Close stops every probe and waits for its goroutine; no goroutine
// started by this package outlives it.
package prober
