//go:build !linux

package derp

import (
	"errors"
	"net"
	"time"
)

// rttSupported is false: the reference samples RTTs on Linux only.
const rttSupported = false

// tcpRTT is only implemented on Linux.
func tcpRTT(*net.TCPConn) (time.Duration, error) {
	return 0, errors.New("TCP_INFO not supported on this system")
}
