package derp

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// canAwaitReadable says whether socketReadable works here.
const canAwaitReadable = true

// socketReadable reports whether a read of fd would not block: it has
// data, has reached EOF or has an error pending. Called by the runtime
// poller through RawConn.Read, which waits and calls again on false. It
// peeks at one byte without a source address (unix.Recvfrom would
// allocate one).
func socketReadable(fd uintptr) bool {
	var b [1]byte
	_, _, errno := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	return errno != unix.EAGAIN && errno != unix.EINTR
}
