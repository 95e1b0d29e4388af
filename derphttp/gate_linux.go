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
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		ready, err := peekSocket(fd)
		rerr = err
		return ready // if not, wait for readability
	})
	if err != nil {
		return err
	}
	return rerr
}

// canPeek says whether peekSocket works here.
const canPeek = true

// peekSocket reports, without blocking or taking any bytes, whether fd
// has input, or else an error or its end (io.EOF) to report.
func peekSocket(fd uintptr) (ready bool, err error) {
	var buf [1]byte
	n, _, err := unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return false, nil
	case err != nil:
		return true, err
	case n == 0:
		return true, io.EOF
	}
	return true, nil
}
