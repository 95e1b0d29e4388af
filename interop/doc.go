// Package interop holds tests that run openderp against the reference
// implementation, tailscale.com v1.76.3, as a real peer: their clients
// against our servers, our clients against theirs, and the same inputs fed
// to both. It is a separate module so that nothing else in openderp
// depends on tailscale.com.
//
// The tailnet tests go further: two tsnet nodes of the reference, with
// their whole stack, reach each other through our relay (alone, or meshed
// in one region with the reference's), served by the reference's test
// control server. TestMain re-runs the test binary with the knobs the
// tailscale packages read at init (TS_DEBUG_ALWAYS_USE_DERP and those that
// keep a node on loopback), so every test runs in that child; guards in
// loopback_test.go fail a test that tries to leave loopback.
//
// interop/latest does the same against the newest reference release that
// builds with the project's Go.
package interop
