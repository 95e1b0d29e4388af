package acceptretry

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
)

// A Handoff passes connections that a listener's own goroutines have
// vetted (a PROXY header read, a request header or TLS handshake waited
// for) to the listener's Accept method, and tells all of them when the
// listener has ended. The zero value is not usable; see NewHandoff.
type Handoff struct {
	ready chan net.Conn
	done  chan struct{}
	once  sync.Once
	err   atomic.Pointer[error] // what Accept returns once ended; nil for net.ErrClosed
}

// NewHandoff returns a Handoff that has not ended.
func NewHandoff() *Handoff {
	return &Handoff{ready: make(chan net.Conn), done: make(chan struct{})}
}

// Accept returns the next connection given to h, or, once h has ended,
// the error it ended with (net.ErrClosed if none).
func (h *Handoff) Accept() (net.Conn, error) {
	select {
	case c := <-h.ready:
		return c, nil
	case <-h.done:
		if p := h.err.Load(); p != nil {
			return nil, *p
		}
		return nil, net.ErrClosed
	}
}

// Give waits until Accept takes c, and reports true, or until h ends, and
// reports false: c is then still the caller's to close.
func (h *Handoff) Give(c net.Conn) bool {
	select {
	case h.ready <- c:
		return true
	case <-h.done:
		return false
	}
}

// Done is closed when h ends.
func (h *Handoff) Done() <-chan struct{} { return h.done }

// End ends h, the first time it is called, and reports whether this was
// that call. Accept then returns err, or net.ErrClosed if err is nil.
func (h *Handoff) End(err error) (first bool) {
	h.once.Do(func() {
		if err != nil {
			h.err.Store(&err)
		}
		close(h.done)
		first = true
	})
	return first
}

// Run accepts connections from ln with Accept, passing each to handle,
// until h ends or ln fails for good; then it ends h with ln's error and
// closes ln.
func Run(ln net.Listener, h *Handoff, handle func(net.Conn)) {
	for {
		c, err := Accept(ln, h.Done())
		if errors.Is(err, ErrStopped) {
			return
		}
		if err != nil {
			if h.End(err) {
				ln.Close()
			}
			return
		}
		handle(c)
	}
}
