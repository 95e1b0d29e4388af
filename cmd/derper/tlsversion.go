package main

import (
	"crypto/tls"
	"fmt"
)

// tlsMinVersions maps the accepted -tls-min-version values to their
// crypto/tls constants. TLS 1.0 and 1.1 are not offered: no DERP client
// needs them.
var tlsMinVersions = map[string]uint16{
	"1.2": tls.VersionTLS12,
	"1.3": tls.VersionTLS13,
}

// parseTLSMinVersion parses a -tls-min-version value.
func parseTLSMinVersion(s string) (uint16, error) {
	if v, ok := tlsMinVersions[s]; ok {
		return v, nil
	}
	return 0, fmt.Errorf("derper: -tls-min-version %q: want \"1.2\" or \"1.3\"", s)
}
