// Package admission holds the client admission checks derper adds to a
// derp.Server beyond those built into it: an allow list of node keys read
// from a file and kept current, and the device list of a tailnet fetched
// from the Tailscale API and cached. Each check is a derp.AdmitFunc.
package admission
