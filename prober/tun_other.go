//go:build !linux

package prober

import (
	"fmt"
	"net/netip"
	"runtime"
)

// OpenTUN creates a TUN device for TCP-over-DERP bandwidth probes. It is
// only implemented on Linux.
func OpenTUN(name string, addr netip.Addr) (*TUN, error) {
	return nil, fmt.Errorf("TUN bandwidth probes are not supported on %s", runtime.GOOS)
}
