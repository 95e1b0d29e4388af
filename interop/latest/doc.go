// Package latest holds tests that run openderp against the newest
// tailscale.com release that builds with the Go toolchain the project uses
// (v1.102.5), as the interop module does for v1.76.3: tsnet nodes of that
// version through our relay over TLS and WebSocket, and its derphttp
// client against our handler. It is a module of its own so that the two
// reference versions never have to agree on dependencies.
//
// As in interop, TestMain re-runs the test binary with the knobs the
// tailscale packages read at init. The reference's DERP WebSocket client is
// compiled in only with -tags ts_debug_websockets (scripts/test.sh sets
// it); without it the WebSocket cases skip.
package latest
