package derphttp

import (
	"io"
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// waitReadable blocks until c has a byte to read, without reading it, or
// fails if c is closed or reaches EOF first. Only a goroutine parked in
// the network poller waits: no read buffer is held. Connections without a
// socket return at once.
func waitReadable(c net.Conn) error {
	return waitSocket(c, peekSocket)
}

// waitSocket parks in the poller until peek, called with c's socket each
// time it becomes readable, reports ready, and returns the error peek or
// the wait reported. Connections without a socket return at once.
func waitSocket(c net.Conn, peek func(fd uintptr) (ready bool, err error)) error {
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
		ready, err := peek(fd)
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
	n, ended, err := peekInto(fd, buf[:])
	return n > 0 || ended, err
}

// peekInto copies into buf what fd holds, without taking it and without
// blocking, and returns how much. With nothing to copy, ended says
// whether fd failed (err) or reached its end (io.EOF) rather than merely
// having no input yet.
func peekInto(fd uintptr, buf []byte) (n int, ended bool, err error) {
	n, _, err = unix.Recvfrom(int(fd), buf, unix.MSG_PEEK|unix.MSG_DONTWAIT)
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return 0, false, nil
	case err != nil:
		return 0, true, err
	case n == 0:
		return 0, true, io.EOF
	}
	return n, false, nil
}

// headPeekSize is how much of a request waitRequestHead looks at: a
// request whose header is longer is handed over once this much arrived.
const headPeekSize = 4 << 10

// headPeekPool holds the buffers waitRequestHead peeks into; one is held
// only during the peek, never while waiting, and never on the stack.
var headPeekPool = sync.Pool{New: func() any { return new([headPeekSize]byte) }}

// waitRequestHead is waitReadable for a plain HTTP connection: it waits
// until the socket holds the whole request header (up to the blank line
// that ends it, or headPeekSize bytes), without reading it, or fails if c
// is closed or ends first. A client that dribbles its request (slowloris)
// thus waits in the poller without net/http's goroutine and buffers.
func waitRequestHead(c net.Conn) error {
	return waitSocket(c, peekRequestHead)
}

// peekRequestHead reports, without taking any bytes, whether fd holds a
// complete request header (or headPeekSize bytes of one), or else an
// error or its end (io.EOF) to report.
func peekRequestHead(fd uintptr) (ready bool, err error) {
	buf := headPeekPool.Get().(*[headPeekSize]byte)
	defer headPeekPool.Put(buf)
	n, ended, err := peekInto(fd, buf[:])
	if n == 0 {
		return ended, err
	}
	if n == len(buf) || headComplete(buf[:n]) || !plausibleHead(buf[:n]) {
		return true, nil
	}
	// Incomplete: hand it over anyway if the client has shut down its
	// side (net/http then reads what there is and the end), since no
	// more bytes will come to complete it.
	return peerClosed(fd), nil
}

// peerClosed reports whether the peer of fd has closed or shut down its
// sending side, without taking any bytes.
func peerClosed(fd uintptr) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0 && fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR) != 0
}
