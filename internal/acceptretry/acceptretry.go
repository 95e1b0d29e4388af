// Package acceptretry accepts connections from a listener the way an
// accept loop should: it rides out temporary failures, such as running out
// of file descriptors, with growing pauses instead of spinning or giving up.
//
// It also holds the rest of what a listener that vets connections on
// goroutines of its own needs (Run, Handoff): its accept loop, the
// handoff of vetted connections to its Accept method, and its end.
// derphttp's LimitListener and derper's PROXY-protocol listener are both
// built that way; this package is the one copy of those parts.
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
