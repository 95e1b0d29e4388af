package main

import (
	"context"
	"expvar"
	"net"
	"syscall"
	"time"

	"golang.org/x/time/rate"
)

// listen opens a TCP listener on addr with derper's socket options: TCP
// keepalive with the given period (long, to spare mobile batteries; DERP's
// own keepalive frames detect dead peers) and, on Linux,
// TCP_USER_TIMEOUT, which accepted sockets inherit. Multipath TCP is off.
func listen(ctx context.Context, addr string, keepAlive, userTimeout time.Duration) (net.Listener, error) {
	lc := net.ListenConfig{
		KeepAlive: keepAlive,
		Control: func(network, address string, c syscall.RawConn) error {
			return setUserTimeout(c, userTimeout)
		},
	}
	// Go turns Multipath TCP on for listeners where the kernel has it,
	// and MPTCP sockets ignore TCP_USER_TIMEOUT; today's derper turns it
	// off, and so do we.
	lc.SetMultipathTCP(false)
	return lc.Listen(ctx, "tcp", addr)
}

// limitedListener hands out connections at most at the rate of its token
// bucket. Connections over the rate are closed at once, so the client sees
// a prompt close rather than a hang, and counted.
type limitedListener struct {
	net.Listener
	lim      *rate.Limiter // set once
	accepted expvar.Int
	rejected expvar.Int
}

// newLimitedListener wraps ln with a bucket of limit tokens per second
// and the given burst. An infinite limit admits everything.
func newLimitedListener(ln net.Listener, limit float64, burst int) *limitedListener {
	return &limitedListener{Listener: ln, lim: rate.NewLimiter(rate.Limit(limit), burst)}
}

// Accept returns the next connection within the rate. Refused connections
// do not end the listener: the reference returned an error that stopped
// the whole HTTP server. See docs/compat.md#derper-accept-limit.
func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.lim.Allow() {
			l.accepted.Add(1)
			return c, nil
		}
		l.rejected.Add(1)
		c.Close()
	}
}

// expVar returns the counters as the reference's tls_listener set.
func (l *limitedListener) expVar() *expvar.Map {
	m := new(expvar.Map)
	m.Set("counter_accepted_connections", &l.accepted)
	m.Set("counter_rejected_connections", &l.rejected)
	return m
}
