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
// back and waits for the socket to become readable without holding any
// buffer (see awaitData), so an idle connection costs no read buffer. This
// needs a plain TCP connection, whose readiness the runtime poller can
// report. Over TLS and other wrapped connections, whose own layers buffer
// data the socket no longer shows, the read loop instead swaps the front
// end's reader, once drained, for a small one of its own: such a layer
// holds whole records already, so a large buffer on top of it saves few
// calls. See docs/compat.md#idle-connections.

// readBufferSize is the size of the pooled read buffers: several frames of
// small packets per system call.
const readBufferSize = 8 << 10

// smallReadBufferSize is the size of the reader kept by connections that
// cannot give theirs back while idle; at least a key, for Peek.
const smallReadBufferSize = 256

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

// readSide is the read loop's state besides c.br, which is nil while the
// connection is idle.
type readSide struct {
	brPooled bool            // c.br came from readerPool
	brSmall  bool            // c.br is the connection's own small reader
	src      io.Reader       // what the read loop's own readers read from; nil if none
	raw      syscall.RawConn // nil when readiness cannot be awaited; see above
}

// initReader makes c read first whatever initial holds (bytes the front
// end or the handshake read ahead) and then nc.
func (c *sclient) initReader(nc Conn, initial *bufio.Reader) {
	c.br = initial
	c.rs.src, _ = nc.(io.Reader)
	tc, ok := nc.(*net.TCPConn)
	if !ok || !canAwaitReadable {
		return
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return
	}
	c.rs.src, c.rs.raw = tc, rc
}

// awaitData makes sure that reading the next byte will not block while
// holding a pooled buffer: if c.br is empty it gives it back, waits until
// the socket has data (or is closed or fails) and borrows a buffer again.
// Without a way to wait it only swaps a drained front-end reader for a
// small one.
func (c *sclient) awaitData() error {
	if c.br.Buffered() > 0 {
		return nil
	}
	if c.rs.raw == nil {
		if !c.rs.brSmall && c.rs.src != nil {
			c.br = bufio.NewReaderSize(c.rs.src, smallReadBufferSize)
			c.rs.brSmall = true
		}
		return nil
	}
	c.releaseReader()
	if err := c.rs.raw.Read(socketReadable); err != nil {
		return err
	}
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(c.rs.src)
	c.rs.brPooled = true
	return nil
}

// releaseReader gives back a pooled c.br; nothing may read after it until
// awaitData.
func (c *sclient) releaseReader() {
	if c.rs.brPooled {
		c.br.Reset(nil)
		readerPool.Put(c.br)
	}
	c.br, c.rs.brPooled = nil, false
}
