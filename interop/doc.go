// Package interop holds tests that run openderp against the reference
// implementation, tailscale.com v1.76.3, as a real peer: their clients
// against our servers, our clients against theirs, and the same inputs fed
// to both. It is a separate module so that nothing else in openderp
// depends on tailscale.com.
package interop
