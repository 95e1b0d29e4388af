//go:build !linux

package derp

import (
	"errors"
	"net"
	"time"
)

// tcpRTT is only implemented on Linux.
func tcpRTT(*net.TCPConn) (time.Duration, error) {
	return 0, errors.New("TCP_INFO not supported on this system")
}
