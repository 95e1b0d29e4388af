package prober

import "net/netip"

// isIPLiteral reports whether host is an IP address, to which TLS clients
// send no SNI.
func isIPLiteral(host string) bool {
	_, err := netip.ParseAddr(host)
	return err == nil
}
