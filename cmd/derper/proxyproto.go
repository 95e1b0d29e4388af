package main

import (
	"bufio"
	"errors"
	"expvar"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/openderp/openderp/internal/acceptretry"
	"github.com/openderp/openderp/internal/varz"
	"github.com/pires/go-proxyproto"
)

// PROXY protocol in front of derper's TCP listeners (openderp only; see
// docs/operating.md, "Behind a TCP load balancer"). A load balancer in TCP
// mode hides the client's address; with -proxy-protocol-from it prepends
// a PROXY header (v1 or v2) naming the client, and the listener made here
// hands the connection on with that address as its RemoteAddr, so TLS,
// logs, metrics, per-IP limits, admission and the debug access check all
// see the client.
//
// Policy: a connection from a trusted address must start with a header
// (a load balancer that sometimes omits it is misconfigured, and guessing
// would let a client pose as the balancer); a connection from any other
// address must not carry one. Both kinds of offender are closed and
// counted. The header is read by a goroutine of the listener's own, under
// proxyHeaderTimeout, before the connection reaches Accept, so a slow
// balancer connection never holds up the others; untrusted connections are
// handed on at once and checked lazily on their first Read.

// proxyHeaderTimeout bounds how long a connection from a trusted address
// may take to deliver its whole PROXY header. Load balancers send it as
// soon as they connect, before any byte of the client's.
const proxyHeaderTimeout = 5 * time.Second

// proxyReadBuffer is the size of the buffer a trusted connection's header
// is read through: room for the longest v1 line (107 bytes), which the
// library needs in one buffer, and a common v2 header with a few TLVs.
const proxyReadBuffer = 256

// Reasons a connection is refused; the labels of the proxy_protocol
// counter_refused metric.
const (
	refuseUntrusted = "untrusted_header" // header from an address not trusted
	refuseMissing   = "missing_header"   // trusted address, no header
	refuseInvalid   = "invalid_header"   // trusted address, malformed or unusable header
	refuseTimeout   = "header_timeout"   // trusted address, header incomplete in time
)

// errUntrustedHeader is what the first Read of a connection from an
// untrusted address returns when it opens with a PROXY header.
var errUntrustedHeader = errors.New("derper: PROXY protocol header from an address not in -proxy-protocol-from")

// parseProxyFrom parses the value of -proxy-protocol-from: comma-separated
// IP prefixes ("10.0.0.0/8") or single addresses ("192.0.2.7"). Empty
// means none.
func parseProxyFrom(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(f)
		if err != nil || ip.Zone() != "" {
			return nil, fmt.Errorf("-proxy-protocol-from: %q is neither an IP prefix nor an IP address", f)
		}
		out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
	}
	return out, nil
}

// proxyMetrics counts what PROXY listeners do. One set serves every
// listener of the process.
type proxyMetrics struct {
	proxied  expvar.Int    // trusted connections handed on with the header's client address
	local    expvar.Int    // trusted connections with a LOCAL or UNKNOWN header (balancer health checks)
	direct   expvar.Int    // untrusted connections handed on (checked on first Read)
	refused  varz.LabelMap // by refuse* reason
	vars     *expvar.Map
	initOnce sync.Once
}

// expVar returns the metrics as the proxy_protocol set.
func (m *proxyMetrics) expVar() *expvar.Map {
	m.initOnce.Do(func() {
		m.refused.Label = "reason"
		for _, r := range []string{refuseUntrusted, refuseMissing, refuseInvalid, refuseTimeout} {
			if m.refused.Get(r) == nil {
				m.refused.Set(r, new(expvar.Int))
			}
		}
		m.vars = new(expvar.Map)
		m.vars.Set("counter_proxied_connections", &m.proxied)
		m.vars.Set("counter_local_headers", &m.local)
		m.vars.Set("counter_direct_connections", &m.direct)
		m.vars.Set("counter_refused", &m.refused)
	})
	return m.vars
}

// A proxyListener accepts connections from an inner listener and applies
// the PROXY protocol policy to them (see the top of this file).
type proxyListener struct {
	ln      net.Listener   // set once
	trusted []netip.Prefix // set once
	timeout time.Duration  // set once
	m       *proxyMetrics  // set once

	h  *acceptretry.Handoff // connections to hand to Accept; ended by Close or by ln failing
	wg sync.WaitGroup       // the accept loop and every header reader

	mu      sync.Mutex
	reading map[net.Conn]struct{} // guarded by mu; headers being read
	closed  bool                  // guarded by mu
}

// newProxyListener wraps ln. Connections from trusted prefixes must open
// with a PROXY header; others must not. It starts accepting at once; Close
// stops it.
func newProxyListener(ln net.Listener, trusted []netip.Prefix, timeout time.Duration, m *proxyMetrics) *proxyListener {
	m.expVar() // labels exist before the first count
	l := &proxyListener{
		ln:      ln,
		trusted: trusted,
		timeout: timeout,
		m:       m,
		h:       acceptretry.NewHandoff(),
		reading: make(map[net.Conn]struct{}),
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// Accept returns the next connection that passed the policy.
func (l *proxyListener) Accept() (net.Conn, error) { return l.h.Accept() }

// Addr returns the inner listener's address.
func (l *proxyListener) Addr() net.Addr { return l.ln.Addr() }

// Close closes the inner listener and every connection whose header is
// still being read, and waits for the listener's goroutines to end.
// Connections already returned by Accept are the caller's.
func (l *proxyListener) Close() error {
	var err error
	if l.h.End(nil) {
		err = l.ln.Close()
	}
	l.mu.Lock()
	l.closed = true
	reading := make([]net.Conn, 0, len(l.reading))
	for c := range l.reading {
		reading = append(reading, c)
	}
	l.mu.Unlock()
	for _, c := range reading {
		c.Close()
	}
	l.wg.Wait()
	return err
}

func (l *proxyListener) acceptLoop() {
	defer l.wg.Done()
	acceptretry.Run(l.ln, l.h, l.accepted)
}

// accepted starts the policy on c: an untrusted source's connection goes
// to Accept as it is; a trusted source's gets a goroutine that reads its
// header.
func (l *proxyListener) accepted(c net.Conn) {
	if !l.isTrusted(c.RemoteAddr()) {
		l.m.direct.Add(1)
		l.deliver(&checkedConn{Conn: c, m: l.m})
		return
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		c.Close()
		return
	}
	l.reading[c] = struct{}{}
	l.mu.Unlock()
	l.wg.Add(1)
	go l.readHeader(c)
}

// deliver hands c to Accept, or closes it if the listener closes first.
func (l *proxyListener) deliver(c net.Conn) {
	if !l.h.Give(c) {
		c.Close()
	}
}

// isTrusted reports whether a is inside one of the trusted prefixes.
func (l *proxyListener) isTrusted(a net.Addr) bool {
	ip, ok := addrIP(a)
	if !ok {
		return false
	}
	for _, p := range l.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// addrIP returns the IP of a TCP address, IPv4-mapped IPv6 unmapped.
func addrIP(a net.Addr) (netip.Addr, bool) {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, ok := netip.AddrFromSlice(ta.IP)
		return ip.Unmap(), ok
	}
	if a == nil {
		return netip.Addr{}, false
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// readHeader reads the header of a connection from a trusted address and
// hands the connection on, or refuses it.
func (l *proxyListener) readHeader(c net.Conn) {
	defer l.wg.Done()
	pc, reason := readProxyHeader(c, l.timeout, l.m)
	l.mu.Lock()
	delete(l.reading, c)
	closed := l.closed
	l.mu.Unlock()
	switch {
	case closed:
		c.Close() // Close cut the read short: nothing to count
	case reason != "":
		l.m.refused.Add(reason, 1)
		c.Close()
	case pc == nil:
		c.Close() // closed before sending anything: nothing to count
	default:
		l.deliver(pc)
	}
}

// readProxyHeader reads the PROXY header at the start of c, waiting at
// most timeout, and returns the connection to hand on, with the client's
// addresses, or the reason to refuse it. It returns neither when c ended
// or failed before its first byte, as a balancer's plain TCP health check
// does.
func readProxyHeader(c net.Conn, timeout time.Duration, m *proxyMetrics) (net.Conn, string) {
	if timeout > 0 {
		if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return nil, ""
		}
	}
	cr := &countingReader{r: c}
	br := bufio.NewReaderSize(cr, proxyReadBuffer)
	h, err := proxyproto.Read(br)
	if timeout > 0 {
		c.SetReadDeadline(time.Time{})
	}
	if err != nil {
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			return nil, refuseTimeout
		case cr.n == 0:
			// Closed or reset before the first byte: a balancer's TCP
			// health check, not worth a count.
			return nil, ""
		case errors.Is(err, proxyproto.ErrNoProxyProtocol):
			return nil, refuseMissing
		default:
			// The library reports a stalled v1 line as unreadable
			// rather than as a timeout; either way it is unusable.
			return nil, refuseInvalid
		}
	}
	ac := addrConn{Conn: c, remote: c.RemoteAddr(), local: c.LocalAddr()}
	switch {
	case h.Command.IsLocal() || h.TransportProtocol.IsUnspec():
		// The balancer speaking for itself: keep the socket's addresses.
		m.local.Add(1)
	case h.TransportProtocol.IsStream() && (h.TransportProtocol.IsIPv4() || h.TransportProtocol.IsIPv6()):
		src, ok1 := h.SourceAddr.(*net.TCPAddr)
		dst, ok2 := h.DestinationAddr.(*net.TCPAddr)
		if !ok1 || !ok2 {
			return nil, refuseInvalid
		}
		ac.remote, ac.local = src, dst
		m.proxied.Add(1)
	default:
		// UDP or Unix sockets: not a client of a TCP relay.
		return nil, refuseInvalid
	}
	if br.Buffered() == 0 {
		return &proxiedConn{ac}, ""
	}
	return &bufferedConn{addrConn: ac, br: br}, ""
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (cr *countingReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	cr.n += int64(n)
	return n, err
}

// addrConn is a connection from a load balancer that reports the
// addresses of its PROXY header.
type addrConn struct {
	net.Conn          // the balancer's TCP connection
	remote   net.Addr // set once
	local    net.Addr // set once
}

// RemoteAddr returns the client's address from the PROXY header.
func (c *addrConn) RemoteAddr() net.Addr { return c.remote }

// LocalAddr returns the address the client connected to, from the PROXY
// header.
func (c *addrConn) LocalAddr() net.Addr { return c.local }

// NetConn returns the balancer's TCP connection, for socket statistics.
// Reading it directly would skip bytes already buffered.
func (c *addrConn) NetConn() net.Conn { return c.Conn }

// proxiedConn is an addrConn with nothing read ahead of the client's
// bytes, so its socket may be polled directly for readiness.
type proxiedConn struct{ addrConn }

// SyscallConn returns the socket's raw connection.
func (c *proxiedConn) SyscallConn() (syscall.RawConn, error) { return rawConn(c.Conn) }

// bufferedConn is an addrConn whose first client bytes arrived with the
// header and are served from br first.
type bufferedConn struct {
	addrConn
	br *bufio.Reader // owned by the reading goroutine; nil once drained
}

func (c *bufferedConn) Read(p []byte) (int, error) {
	if c.br != nil {
		if c.br.Buffered() > 0 {
			return c.br.Read(p)
		}
		c.br = nil
	}
	return c.Conn.Read(p)
}

// checkedConn is a connection from an untrusted address: its first Read
// refuses it if it opens with a PROXY header.
type checkedConn struct {
	net.Conn
	m       *proxyMetrics // set once
	br      *bufio.Reader // owned by the reading goroutine; the first bytes, nil once drained
	checked bool          // owned by the reading goroutine
	err     error         // owned by the reading goroutine; sticky refusal
}

func (c *checkedConn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if !c.checked {
		if c.br == nil {
			c.br = bufio.NewReaderSize(c.Conn, 16) // the smallest; a v2 signature is 12
		}
		found, err := hasProxySignature(c.br)
		if err != nil {
			return 0, err // a deadline, say; check again on the next Read
		}
		c.checked = true
		if found {
			c.m.refused.Add(refuseUntrusted, 1)
			c.err = errUntrustedHeader
			c.Conn.Close()
			return 0, c.err
		}
	}
	if c.br != nil {
		if c.br.Buffered() > 0 {
			return c.br.Read(p)
		}
		c.br = nil
	}
	return c.Conn.Read(p)
}

// NetConn returns the TCP connection, for socket statistics. Reading it
// directly would skip bytes already buffered.
func (c *checkedConn) NetConn() net.Conn { return c.Conn }

// SyscallConn returns the socket's raw connection. Before the first Read
// nothing is buffered, so polling it for readiness is exact.
func (c *checkedConn) SyscallConn() (syscall.RawConn, error) { return rawConn(c.Conn) }

// rawConn returns c's raw socket, or an error when it has none.
func rawConn(c net.Conn) (syscall.RawConn, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, errors.New("derper: connection has no socket")
	}
	return sc.SyscallConn()
}

// hasProxySignature reports whether br's next bytes are a PROXY v1 or v2
// signature. It only peeks, reading no further than it takes to tell, and
// reports false when the stream ends first.
func hasProxySignature(br *bufio.Reader) (bool, error) {
	for _, sig := range [][]byte{proxyproto.SIGV1, proxyproto.SIGV2} {
		match, err := peekPrefix(br, sig)
		if err != nil || match {
			return match, err
		}
	}
	return false, nil
}

// peekPrefix reports whether br's next bytes are sig, peeking one byte
// more at a time so that it never waits for bytes it does not need.
func peekPrefix(br *bufio.Reader, sig []byte) (bool, error) {
	for n := 1; n <= len(sig); n++ {
		b, err := br.Peek(n)
		if len(b) < n {
			if errors.Is(err, io.EOF) {
				return false, nil
			}
			return false, err
		}
		if b[n-1] != sig[n-1] {
			return false, nil
		}
	}
	return true, nil
}

// proxyFront wraps derper's TCP listeners when -proxy-protocol-from is
// set. A nil *proxyFront leaves them alone.
type proxyFront struct {
	trusted []netip.Prefix // set once
	m       proxyMetrics
}

// newProxyFront parses the -proxy-protocol-from value and publishes the
// proxy_protocol metrics. It returns nil when the value is empty.
func newProxyFront(from string, logf func(string, ...any)) (*proxyFront, error) {
	trusted, err := parseProxyFrom(from)
	if err != nil || len(trusted) == 0 {
		return nil, err
	}
	f := &proxyFront{trusted: trusted}
	publish("proxy_protocol", f.m.expVar())
	logf("derper: PROXY protocol header required from %v and refused from everyone else", trusted)
	return f, nil
}

// wrap returns ln behind the PROXY protocol policy, or ln itself when f
// is nil.
func (f *proxyFront) wrap(ln net.Listener) net.Listener {
	if f == nil {
		return ln
	}
	return newProxyListener(ln, f.trusted, proxyHeaderTimeout, &f.m)
}
