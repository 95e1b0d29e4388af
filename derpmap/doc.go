// Package derpmap describes where DERP relays are: the DERP map a
// coordination server hands to clients, grouping relay nodes into regions.
//
// The JSON encoding of Map, Region, Node and HomeParams is the one
// Tailscale clients and control servers exchange, field for field,
// including which fields are left out when empty. Fetch loads a map from
// an https://, http:// or file:// URL.
package derpmap
