package derphttp

import (
	"io"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// waitReadable blocks until c has a byte to read, without reading it, or
// fails if c is closed or reaches EOF first. Only a goroutine parked in
// the network poller waits: no read buffer is held. Connections without a
// socket return at once.
func waitReadable(c net.Conn, _ <-chan struct{}) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	var buf [1]byte
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, _, err := unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			return false // wait for readability
		case err != nil:
			rerr = err
		case n == 0:
			rerr = io.EOF
		}
		return true
	})
	if err != nil {
		return err
	}
	return rerr
}
