// Package latest holds tests that run openderp against the newest
// tailscale.com release that builds with the Go toolchain the project uses
// (v1.102.5), as the interop module does for v1.76.3. It is a module of its
// own so that the two reference versions never have to agree on
// dependencies.
package latest
