// Command derper runs a DERP relay server, flag-compatible with the
// reference derper daemon: the DERP relay over HTTP(S) and WebSocket, a STUN
// server, bootstrap DNS, captive-portal and latency probes, and
// access-controlled debug pages with Prometheus metrics.
//
// Run with -h for the flags. A development instance on localhost:
//
//	derper -dev
package main
