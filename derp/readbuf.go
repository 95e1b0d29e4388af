package derp

import (
	"bufio"
	"io"
	"net"
	"sync"
	"syscall"
)

// A connection's read buffer is borrowed from readerPool only while the
// client is sending. When the buffer runs empty the read loop gives it
// back and parks in the runtime poller without any buffer (see
// awaitData), so an idle connection costs no read buffer; when the socket
// turns readable, the poller's callback reads what is there into a pooled
// buffer without blocking, which costs no more system calls than an
// ordinary blocking read, and a pooled reader takes it from there. This needs a plain TCP connection. Over
// TLS and other wrapped connections, whose own layers buffer data the
// socket no longer shows, the read loop instead swaps the front end's
// reader, once drained, for a small one of its own: such a layer holds
// whole records already, so a large buffer on top of it saves few calls.
// A connection that is a ReadWaiter (TLS from derphttp) can tell when its
// layers are empty: the read loop then gives its pooled buffer back and
// waits in WaitReadable, as on plain TCP.
// See docs/compat.md#idle-connections.

// readBufferSize is the size of the pooled read buffers: several frames of
// small packets per system call.
const readBufferSize = 8 << 10

// smallReadBufferSize is the size of the reader kept by connections that
// cannot give theirs back while idle; at least MinReaderSize.
const smallReadBufferSize = 256

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

// readSide is the read loop's state besides c.br, which is nil while the
// connection is idle.
type readSide struct {
	waiter   ReadWaiter            // nc, if it can wait without buffers; see awaitData
	brPooled bool                  // c.br came from readerPool
	brSmall  bool                  // c.br is the connection's own small reader
	src      io.Reader             // what the read loop's own readers read from; nil if none
	raw      syscall.RawConn       // nil when readiness cannot be awaited; see above
	pre      prefetched            // what pooled readers read from
	fill     func(fd uintptr) bool // c.fillNonblocking, bound once
	fillErr  error                 // what the last fill met, other than "would block"
	parked   bool                  // the read loop blocked (poller or push-back) since it last looked
}

// prefetched serves first the bytes the poller's callback read, then the
// connection.
type prefetched struct {
	conn io.Reader
	buf  *[readBufferSize]byte // from prefetchPool while it holds bytes
	b    []byte                // what is left of buf
}

var prefetchPool = sync.Pool{New: func() any { return new([readBufferSize]byte) }}

func (r *prefetched) Read(p []byte) (int, error) {
	if r.buf == nil {
		return r.conn.Read(p)
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	if len(r.b) == 0 {
		r.release()
	}
	return n, nil
}

func (r *prefetched) release() {
	if r.buf != nil {
		prefetchPool.Put(r.buf)
		r.buf, r.b = nil, nil
	}
}

// initReader makes c read first whatever initial holds (bytes the front
// end or the handshake read ahead) and then nc.
func (c *sclient) initReader(nc Conn, initial *bufio.Reader) {
	c.br = initial
	c.rs.src, _ = nc.(io.Reader)
	if w, ok := nc.(ReadWaiter); ok && c.rs.src != nil {
		c.rs.waiter = w
		return
	}
	tc, ok := nc.(*net.TCPConn)
	if !ok || !canReadNonblocking {
		return
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return
	}
	c.rs.raw = rc
	c.rs.pre.conn = tc
	c.rs.fill = c.fillNonblocking
}

// awaitData makes sure that reading the next byte will not block while
// holding a pooled buffer: if c.br is empty it gives it back and waits
// until the socket has data (or is closed or fails), then borrows a
// buffer again, already filled. Without a way to wait it only swaps a
// drained front-end reader for a small one.
func (c *sclient) awaitData() error {
	if c.br.Buffered() > 0 {
		return nil
	}
	if c.rs.waiter != nil {
		return c.awaitWaiter()
	}
	if c.rs.raw == nil {
		if !c.rs.brSmall && c.rs.src != nil {
			c.br = bufio.NewReaderSize(c.rs.src, smallReadBufferSize)
			c.rs.brSmall = true
		}
		return nil
	}
	c.releaseReader()
	c.rs.fillErr = nil
	if err := c.rs.raw.Read(c.rs.fill); err != nil {
		return err
	}
	if c.rs.fillErr != nil {
		return c.rs.fillErr
	}
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(&c.rs.pre)
	c.rs.brPooled = true
	return nil
}

// awaitWaiter is awaitData for a ReadWaiter: it gives back c.br, waits
// without buffers and borrows a pooled reader. It is kept out of
// awaitData so that awaitData's frame, which sits on every idle plain
// connection's parked stack, does not grow with it: a few dozen bytes more
// there double those stacks to 4 KiB.
//
//go:noinline
func (c *sclient) awaitWaiter() error {
	c.releaseReader()
	if err := c.rs.waiter.WaitReadable(); err != nil {
		return err
	}
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(c.rs.src)
	c.rs.brPooled = true
	return nil
}

// fillNonblocking runs in the poller's callback: it reads from fd into a
// pooled buffer without blocking. If fd has nothing yet it gives the
// buffer back and returns false, so that the poller parks the goroutine.
// It stays shallow, so that the parked goroutine's stack stays small.
func (c *sclient) fillNonblocking(fd uintptr) bool {
	buf := prefetchPool.Get().(*[readBufferSize]byte)
	n, err := readNonblocking(int(fd), buf[:])
	if wouldBlock(err) || n == 0 {
		prefetchPool.Put(buf)
		if err == nil || wouldBlock(err) {
			c.rs.parked = true
			return false
		}
		c.rs.fillErr = err
		return true
	}
	c.rs.pre.buf, c.rs.pre.b = buf, buf[:n]
	return true
}

// releaseReader gives back a pooled c.br; nothing may read after it until
// awaitData.
func (c *sclient) releaseReader() {
	if c.rs.brPooled {
		c.br.Reset(nil)
		readerPool.Put(c.br)
	}
	c.br, c.rs.brPooled = nil, false
	c.rs.pre.release()
}
