package derphttp

import (
	"crypto/tls"
	"log"
	"net"
	"syscall"
	"time"
)

// A LimitListener made by NewTLSLimitListener completes each connection's
// TLS handshake itself, before Accept returns it, instead of leaving it to
// the HTTP server. This is what keeps a client that finishes the handshake
// and then says nothing cheap:
//
//   - the handshake runs on the connection's gate goroutine, which exits
//     afterwards, so the stack it grew (certificates, signatures, key
//     agreement) is not kept;
//   - during the handshake the connection reads at most to the end of the
//     current TLS record (see recordConn), so when the handshake is done
//     crypto/tls holds no bytes of the client's first request, and an
//     unreadable socket means there is nothing to serve;
//   - a fresh, small goroutine then waits in the runtime poller, without
//     any buffer (crypto/tls's emptied ones are dropped too, as in
//     tlsidle.go), until the client sends its request, and only then hands
//     the connection to Accept, where the HTTP server gives it its
//     goroutine and 4 KiB buffers.
//
// Accept returns *tls.Conn values whose handshake has completed: serve
// them with http.Server.Serve, not ServeTLS. The HTTP server skips the
// handshake it finds done and still fills in Request.TLS.
//
// See docs/performance.md#stalled-tls.

// defaultTLSHandshakeTimeout bounds the TLS handshake when the listener
// has no HandshakeTimeout; the HTTP server's own bound is its shortest
// read or header timeout, 10 s in derper.
const defaultTLSHandshakeTimeout = 10 * time.Second

// TLSOptions configure a LimitListener that completes TLS handshakes.
type TLSOptions struct {
	// Config is the server's TLS configuration. Its NextProtos must
	// offer what the HTTP server serves ("http/1.1", and "h2" where
	// HTTP/2 is on): http.Server.ServeTLS would add them, Serve does not.
	Config *tls.Config

	// ErrorLog, if not nil, receives a line for each failed handshake,
	// worded as http.Server words it.
	ErrorLog *log.Logger
}

// NewTLSLimitListener is like NewLimitListener but completes the TLS
// handshake of each connection with opts.Config before Accept returns
// it, as a *tls.Conn. The handshake counts as part of the connection's
// pending time and is bounded by lim.HandshakeTimeout, or by 10 seconds
// if that is zero.
func NewTLSLimitListener(ln net.Listener, lim Limits, opts TLSOptions) *LimitListener {
	return newLimitListener(ln, lim, &opts)
}

// tlsHandshake runs lc's TLS handshake on the calling gate goroutine and,
// if it succeeds, starts a fresh goroutine that waits for the client's
// first request and hands the connection to Accept. It closes lc on
// failure.
func (l *LimitListener) tlsHandshake(lc *limitConn) {
	rc := &recordConn{Conn: lc}
	tc := tls.Server(rc, l.tls.Config)
	d := l.lim.HandshakeTimeout
	if d <= 0 {
		d = defaultTLSHandshakeTimeout
	}
	// A deadline, not a context: a context costs the handshake a goroutine.
	err := lc.SetDeadline(time.Now().Add(d))
	if err == nil {
		err = tc.Handshake()
	}
	if err == nil {
		err = lc.SetDeadline(time.Time{})
	}
	if err != nil {
		l.tlsErrors.Add(1)
		if l.tls.ErrorLog != nil {
			l.tls.ErrorLog.Printf("http: TLS handshake error from %s: %v", lc.RemoteAddr(), err)
		}
		l.forget(lc)
		lc.Close()
		return
	}
	l.handshakesTLS.Add(1)
	// From here on the HTTP server reads through rc; the channel send to
	// Accept orders these writes before its reads.
	rc.done = true
	// The handshake read nothing past its last record, so crypto/tls's
	// buffers are empty: drop their storage while the client is silent
	// (see tlsidle.go for how, and when this is a no-op).
	if tlsInputLayout.ok {
		if in := tlsInputOf(tc); !in.buffered() {
			in.release()
		}
	}
	l.wg.Add(1)
	go l.park(lc, tc)
}

// park waits, on a goroutine of its own with a small stack, until the
// client behind tc sends its request, then hands tc to Accept.
func (l *LimitListener) park(lc *limitConn, tc *tls.Conn) {
	defer l.wg.Done()
	var err error
	// Only a bare socket is known to buffer nothing: under a wrapper that
	// read ahead (a PROXY protocol parser, say), the request may already
	// be in memory while the socket stays silent.
	if _, ok := lc.Conn.(*net.TCPConn); ok {
		err = waitReadable(lc.Conn, l.done)
	}
	l.forget(lc)
	if err != nil {
		lc.Close()
		return
	}
	select {
	case l.ready <- tc:
	case <-l.done:
		lc.Close()
	}
}

// recordConn is the connection under a server-side tls.Conn. Until done
// is set, each Read returns at most the rest of the current TLS record,
// so that crypto/tls, which reads ahead into its own buffer otherwise,
// holds nothing past the record it is working on. That costs one more
// read per record, during the handshake only.
type recordConn struct {
	net.Conn
	done bool    // owned by the handshake until set, then by the HTTP server
	hdr  [5]byte // owned by the handshake: the current record's header
	nhdr int     // owned by the handshake: bytes of hdr read
	left int     // owned by the handshake: bytes of the record body still to read
}

// recordHeaderLen is the length of a TLS record header: type, version,
// and a 16-bit length.
const recordHeaderLen = 5

func (c *recordConn) Read(p []byte) (int, error) {
	if c.done || len(p) == 0 {
		return c.Conn.Read(p)
	}
	if c.left > 0 {
		n, err := c.Conn.Read(p[:min(len(p), c.left)])
		c.left -= n
		return n, err
	}
	n, err := c.Conn.Read(p[:min(len(p), recordHeaderLen-c.nhdr)])
	copy(c.hdr[c.nhdr:], p[:n])
	c.nhdr += n
	if c.nhdr == recordHeaderLen {
		c.left = int(c.hdr[3])<<8 | int(c.hdr[4])
		c.nhdr = 0
	}
	return n, err
}

// NetConn returns the connection underneath, for code that looks for the
// TCP socket or the listener's own connection.
func (c *recordConn) NetConn() net.Conn { return c.Conn }

// SyscallConn lets code that waits on the socket reach it.
func (c *recordConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, syscall.EINVAL
}
