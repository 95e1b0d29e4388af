package derptest

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// DefaultPipeBuffer is how many bytes each direction of a Pipe holds
// before writes block.
const DefaultPipeBuffer = 1 << 20

// Pipe returns the two ends of an in-memory, full-duplex connection. Unlike
// net.Pipe, each direction buffers up to DefaultPipeBuffer bytes, so both
// ends may write before either reads, as the DERP handshake does. Deadlines
// work as on a real socket and report os.ErrDeadlineExceeded.
func Pipe() (net.Conn, net.Conn) { return PipeSize(DefaultPipeBuffer) }

// PipeSize is like Pipe with a buffer of size bytes in each direction.
func PipeSize(size int) (net.Conn, net.Conn) {
	ab := newStream(size)
	ba := newStream(size)
	a := &pipeConn{r: ba, w: ab, local: pipeAddr("pipe-a"), remote: pipeAddr("pipe-b")}
	b := &pipeConn{r: ab, w: ba, local: pipeAddr("pipe-b"), remote: pipeAddr("pipe-a")}
	return a, b
}

type pipeAddr string

func (a pipeAddr) Network() string { return "pipe" }
func (a pipeAddr) String() string  { return string(a) }

// stream is one direction of a pipe: a bounded byte buffer with wake-ups.
type stream struct {
	mu       sync.Mutex
	buf      []byte
	size     int
	closedW  bool          // the writing end closed: readers see EOF once drained
	closedR  bool          // the reading end closed: writers fail
	changed  chan struct{} // closed and replaced whenever state changes
	deadline [2]time.Time  // [0] read deadline, [1] write deadline
}

func newStream(size int) *stream {
	return &stream{size: size, changed: make(chan struct{})}
}

// notifyLocked wakes every waiter. Callers hold s.mu.
func (s *stream) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// wait blocks until the state changes or the deadline of kind (0 read,
// 1 write) passes. It is called with s.mu held and returns with it held.
func (s *stream) wait(kind int) error {
	d := s.deadline[kind]
	if !d.IsZero() && !time.Now().Before(d) {
		return os.ErrDeadlineExceeded
	}
	ch := s.changed
	s.mu.Unlock()
	defer s.mu.Lock()
	if d.IsZero() {
		<-ch
		return nil
	}
	t := time.NewTimer(time.Until(d))
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
	return nil
}

func (s *stream) read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.closedR {
			return 0, net.ErrClosed
		}
		if len(s.buf) > 0 {
			n := copy(p, s.buf)
			s.buf = s.buf[n:]
			if len(s.buf) == 0 {
				s.buf = nil
			}
			s.notifyLocked()
			return n, nil
		}
		if s.closedW {
			return 0, io.EOF
		}
		if len(p) == 0 {
			return 0, nil
		}
		if err := s.wait(0); err != nil {
			return 0, err
		}
	}
}

func (s *stream) write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	written := 0
	for len(p) > 0 {
		if s.closedW {
			return written, net.ErrClosed
		}
		if s.closedR {
			return written, io.ErrClosedPipe
		}
		if room := s.size - len(s.buf); room > 0 {
			n := min(room, len(p))
			s.buf = append(s.buf, p[:n]...)
			p = p[n:]
			written += n
			s.notifyLocked()
			continue
		}
		if err := s.wait(1); err != nil {
			return written, err
		}
	}
	return written, nil
}

func (s *stream) setDeadline(kind int, t time.Time) {
	s.mu.Lock()
	s.deadline[kind] = t
	s.notifyLocked()
	s.mu.Unlock()
}

type pipeConn struct {
	r, w          *stream
	local, remote net.Addr
	closeOnce     sync.Once
}

func (c *pipeConn) Read(p []byte) (int, error)  { return c.r.read(p) }
func (c *pipeConn) Write(p []byte) (int, error) { return c.w.write(p) }
func (c *pipeConn) LocalAddr() net.Addr         { return c.local }
func (c *pipeConn) RemoteAddr() net.Addr        { return c.remote }

// Close closes both directions: the peer reads EOF after draining what was
// written, and its writes fail.
func (c *pipeConn) Close() error {
	c.closeOnce.Do(func() {
		c.w.mu.Lock()
		c.w.closedW = true
		c.w.notifyLocked()
		c.w.mu.Unlock()
		c.r.mu.Lock()
		c.r.closedR = true
		c.r.buf = nil
		c.r.notifyLocked()
		c.r.mu.Unlock()
	})
	return nil
}

func (c *pipeConn) SetDeadline(t time.Time) error {
	c.r.setDeadline(0, t)
	c.w.setDeadline(1, t)
	return nil
}

func (c *pipeConn) SetReadDeadline(t time.Time) error {
	c.r.setDeadline(0, t)
	return nil
}

func (c *pipeConn) SetWriteDeadline(t time.Time) error {
	c.w.setDeadline(1, t)
	return nil
}
