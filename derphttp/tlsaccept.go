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
//   - during the handshake crypto/tls is given at most the rest of the
//     current TLS record (see recordConn), so when the handshake is done
//     it holds no bytes of the client's first request; what one socket
//     read brought past the handshake's last record is kept aside, and
//     when there is none, an unreadable socket means there is nothing to
//     serve;
//   - unless the request is there already, a fresh, small goroutine then
//     waits in the runtime poller, without any buffer (crypto/tls's
//     emptied ones are dropped too, as in tlsidle.go), until the client
//     sends its request, and only then hands the connection to Accept,
//     where the HTTP server gives it its goroutine and 4 KiB buffers.
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
// if it succeeds, hands the connection to Accept: at once if the client
// has sent its first request already, or else from a fresh goroutine that
// waits for it. It closes lc on failure.
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
	// The handshake read nothing past its last record into crypto/tls, so
	// its buffers are empty: drop their storage while the client is
	// silent (see tlsidle.go for how, and when this is a no-op).
	if tlsInputLayout.ok {
		if in := tlsInputOf(tc); !in.buffered() {
			in.release()
		}
	}
	// A client that has already sent its request is handed over from
	// here; only a silent one gets a goroutine of its own to wait on.
	ready, err := requestWaiting(lc, rc)
	switch {
	case err != nil:
		l.forget(lc)
		lc.Close()
	case ready:
		l.handOver(lc, tc)
	default:
		l.wg.Add(1)
		go l.park(lc, tc)
	}
}

// requestWaiting reports whether the client behind lc has sent anything
// since its handshake ended, or else the error or end of stream it met.
// Under a wrapper that may have read ahead (a PROXY protocol parser, say)
// it cannot tell, and reports true: only a bare socket is known to buffer
// nothing, and the request may be in memory while the socket stays
// silent.
func requestWaiting(lc *limitConn, rc *recordConn) (bool, error) {
	if rc.pending() {
		return true, nil
	}
	tcp, ok := lc.Conn.(*net.TCPConn)
	if !ok || !canPeek {
		return true, nil
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		return true, nil
	}
	var ready bool
	var perr error
	if err := raw.Control(func(fd uintptr) { ready, perr = peekSocket(fd) }); err != nil {
		return false, err
	}
	return ready, perr
}

// park waits, on a goroutine of its own with a small stack, until the
// client behind tc sends its request, then hands tc to Accept.
func (l *LimitListener) park(lc *limitConn, tc *tls.Conn) {
	defer l.wg.Done()
	if err := waitReadable(lc.Conn); err != nil {
		l.forget(lc)
		lc.Close()
		return
	}
	l.handOver(lc, tc)
}

// handOver passes tc to Accept, or closes it if the listener closes
// first.
func (l *LimitListener) handOver(lc *limitConn, tc *tls.Conn) {
	l.forget(lc)
	if !l.h.Give(tc) {
		lc.Close()
	}
}

// recordConn is the connection under a server-side tls.Conn. Until done
// is set, each Read returns at most the rest of the current TLS record,
// so that crypto/tls, which reads ahead into its own buffer otherwise,
// holds nothing past the record it is working on. A socket read that
// brings more than that (the client's next records, perhaps its request)
// keeps the surplus in extra, from which the following Reads are served
// first: the handshake costs no more reads than without the limit, and
// when it ends, a non-empty extra tells that the client has already sent
// something.
type recordConn struct {
	net.Conn
	done  bool    // owned by the handshake until set, then by the HTTP server
	extra []byte  // owned like done: bytes read past the current record, not yet returned
	xerr  error   // owned like done: the error of the read that filled extra, returned after it
	hdr   [5]byte // owned by the handshake: the current record's header
	nhdr  int     // owned by the handshake: bytes of hdr seen
	left  int     // owned by the handshake: bytes of the record body still to come
}

// recordHeaderLen is the length of a TLS record header: type, version,
// and a 16-bit length.
const recordHeaderLen = 5

func (c *recordConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(c.extra) == 0 {
		if err := c.xerr; err != nil {
			c.xerr = nil
			return 0, err
		}
		if c.done {
			return c.Conn.Read(p)
		}
		n, err := c.Conn.Read(p)
		k := c.consume(p[:n])
		if k < n {
			c.extra = append([]byte(nil), p[k:n]...)
			c.xerr, err = err, nil
		}
		return k, err
	}
	n := copy(p, c.extra)
	if !c.done {
		n = c.consume(p[:n])
	}
	c.extra = c.extra[n:]
	if len(c.extra) == 0 {
		c.extra = nil
	}
	return n, nil
}

// consume walks b, the next bytes of the stream, through the record
// being read and returns how many of them belong to it: all of b, or up
// to and including the record's last byte.
func (c *recordConn) consume(b []byte) int {
	i := 0
	for i < len(b) {
		if c.left > 0 {
			m := min(c.left, len(b)-i)
			c.left -= m
			i += m
			if c.left == 0 {
				return i
			}
			continue
		}
		m := copy(c.hdr[c.nhdr:], b[i:])
		c.nhdr += m
		i += m
		if c.nhdr == recordHeaderLen {
			c.nhdr = 0
			c.left = int(c.hdr[3])<<8 | int(c.hdr[4])
			if c.left == 0 {
				return i // an empty record ends with its header
			}
		}
	}
	return i
}

// pending reports whether the client has sent bytes that were read from
// the socket but not yet returned.
func (c *recordConn) pending() bool { return len(c.extra) > 0 || c.xerr != nil }

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
