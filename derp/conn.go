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

// Logf is a printf-style logger, such as log.Printf. A nil Logf discards.
type Logf func(format string, args ...any)

func (f Logf) printf(format string, args ...any) {
	if f != nil {
		f(format, args...)
	}
}
