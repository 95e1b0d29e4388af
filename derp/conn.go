package derp

import (
	"io"
	"net"
	"time"
)

// Conn is the connection a Server or Client speaks DERP over once the
// transport (TCP, TLS, HTTP upgrade or WebSocket) is set up. A net.Conn
// satisfies it.
type Conn interface {
	io.WriteCloser
	LocalAddr() net.Addr
	SetDeadline(time.Time) error
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// A ReadWaiter is a Conn whose reader can wait for input without holding
// read buffers, such as a TLS connection whose layers expose their
// buffering. A Server's read loop calls WaitReadable, instead of blocking
// in Read, whenever it has consumed everything it read, and reads with a
// pooled buffer only once it returns.
type ReadWaiter interface {
	// WaitReadable blocks until a Read will not block: input is buffered
	// or has arrived, or the connection failed or reached its end (then
	// it may return the error). While it waits, the connection holds no
	// read buffer. Only the connection's reader calls it, between Reads.
	WaitReadable() error
}

// Logf is a printf-style logger, such as log.Printf. A nil Logf discards.
type Logf func(format string, args ...any)

func (f Logf) printf(format string, args ...any) {
	if f != nil {
		f(format, args...)
	}
}
