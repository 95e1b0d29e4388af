// Package acceptretry accepts connections from a listener the way an
// accept loop should: it rides out temporary failures, such as running out
// of file descriptors, with growing pauses instead of spinning or giving up.
//
// derphttp's LimitListener and derper's PROXY-protocol listener both run
// such a loop; this package is the one copy of it.
package acceptretry

import (
	"errors"
	"net"
	"time"
)

// ErrStopped is returned by Accept when done was closed during a pause.
var ErrStopped = errors.New("acceptretry: stopped while waiting to retry")

// Pauses after consecutive temporary failures double from MinPause up to
// MaxPause, as net/http's Server does.
const (
	MinPause = 5 * time.Millisecond
	MaxPause = time.Second
)

// Accept returns the next connection from ln. After a temporary failure
// (a net.Error that reports a timeout, which is how the net package
// reports EMFILE and similar) it waits, doubling the pause each time, and
// tries again; it returns ErrStopped if done is closed meanwhile. Any
// other error is returned at once.
func Accept(ln net.Listener, done <-chan struct{}) (net.Conn, error) {
	var pause time.Duration
	for {
		c, err := ln.Accept()
		if err == nil {
			return c, nil
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return nil, err
		}
		pause = min(max(2*pause, MinPause), MaxPause)
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-done:
			t.Stop()
			return nil, ErrStopped
		}
	}
}
