// Package stun implements the small subset of STUN (RFC 5389) that
// Tailscale clients and DERP servers use to discover a client's public
// address: one request type (Binding) and one response attribute
// (XOR-MAPPED-ADDRESS).
//
// The package is a pure codec. It knows nothing of sockets; package
// stunserver answers requests over UDP and cmd/stunc is a one-shot client.
//
// # Messages
//
// Request and AppendRequest build the 40-byte binding request a Tailscale
// client sends: a header, a SOFTWARE attribute "tailnode" and a FINGERPRINT.
// ParseBindingRequest validates a request from any RFC 5389 client, with or
// without those attributes, without allocating.
//
// Response and AppendResponse build the success response a DERP server
// sends, carrying only XOR-MAPPED-ADDRESS. ParseResponse reads it back and
// also accepts the plain MAPPED-ADDRESS attribute of older servers.
//
// Parse functions return one of the sentinel errors in this package, so
// callers can branch with errors.Is.
package stun
