package derp

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// rttSupported says RTTs can be sampled here.
const rttSupported = true

// tcpRTT returns the kernel's smoothed round-trip time estimate for c.
func tcpRTT(c *net.TCPConn) (time.Duration, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var info *unix.TCPInfo
	var serr error
	if err := rc.Control(func(fd uintptr) {
		info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, serr
	}
	return time.Duration(info.Rtt) * time.Microsecond, nil
}
