package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openderp/openderp/internal/leakcheck"
)

func TestParseProxyFrom(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "", want: nil},
		{in: " , ", want: nil},
		{in: "10.0.0.0/8", want: []string{"10.0.0.0/8"}},
		{in: "10.1.2.3/8", want: []string{"10.0.0.0/8"}}, // masked
		{in: "192.0.2.7", want: []string{"192.0.2.7/32"}},
		{in: "2001:db8::/32, 127.0.0.1", want: []string{"2001:db8::/32", "127.0.0.1/32"}},
		{in: "::1", want: []string{"::1/128"}},
		{in: "10.0.0.0/33", wantErr: true},
		{in: "example.com", wantErr: true},
		{in: "fe80::1%eth0", wantErr: true},
		{in: "10.0.0.1,bogus", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseProxyFrom(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseProxyFrom(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		var gs []string
		for _, p := range got {
			gs = append(gs, p.String())
		}
		if !slices.Equal(gs, tt.want) {
			t.Errorf("parseProxyFrom(%q) = %v, want %v", tt.in, gs, tt.want)
		}
	}
}

// pipeListener is an in-memory listener whose connections come from
// dial, each with the remote address the test picks.
type pipeListener struct {
	conns  chan net.Conn
	done   chan struct{}
	closed bool
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	if !l.closed {
		l.closed = true
		close(l.done)
	}
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeLocal }

var pipeLocal = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443}

// addrPipe is one end of a net.Pipe with TCP addresses.
type addrPipe struct {
	net.Conn
	local, remote net.Addr
}

func (c *addrPipe) LocalAddr() net.Addr  { return c.local }
func (c *addrPipe) RemoteAddr() net.Addr { return c.remote }

// dial returns the client end of a connection from the address from.
func (l *pipeListener) dial(t *testing.T, from string) net.Conn {
	t.Helper()
	ap := netip.MustParseAddrPort(from)
	client, server := net.Pipe()
	sc := &addrPipe{Conn: server, local: pipeLocal, remote: net.TCPAddrFromAddrPort(ap)}
	select {
	case l.conns <- sc:
	case <-time.After(5 * time.Second):
		t.Fatal("listener did not accept")
	}
	return client
}

// v2Header builds a PROXY v2 header by hand: version/command byte,
// family/transport byte, then the address block.
func v2Header(cmd, fam byte, addrs []byte) []byte {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n")
	b = append(b, cmd, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(addrs)))
	return append(b, addrs...)
}

// v4Block is an IPv4 address block: src, dst, sport, dport.
func v4Block(src, dst string, sport, dport uint16) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, sport)
	return binary.BigEndian.AppendUint16(b, dport)
}

// v6Block is an IPv6 address block: src, dst, sport, dport.
func v6Block(src, dst string, sport, dport uint16) []byte {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, sport)
	return binary.BigEndian.AppendUint16(b, dport)
}

// checkNoLeak fails t if a goroutine of the PROXY listener is still alive.
func checkNoLeak(t *testing.T) {
	t.Helper()
	if s := leakcheck.Wait(5*time.Second, "main.(*proxyListener)", "main.readProxyHeader"); s != "" {
		t.Errorf("goroutines left behind:\n%s", s)
	}
}

func TestProxyListener(t *testing.T) {
	const trustedFrom = "127.0.0.1:50000"
	const untrustedFrom = "198.51.100.9:50001"
	payload := "GET / HTTP/1.1\r\nHost: derp\r\n\r\n" + strings.Repeat("x", 1000)
	tlv := []byte{0x04, 0x00, 0x03, 'a', 'b', 'c'} // PP2_TYPE_NOOP with 3 bytes
	tests := []struct {
		name   string
		from   string
		writes []string // written one after the other; the last one is followed by a close if close is set
		close  bool

		wantRefused string // a refuse* reason, or "" if accepted
		wantRemote  string // the accepted connection's RemoteAddr
		wantLocal   string // and its LocalAddr
		wantRead    string // what the accepted connection yields
		wantReadErr error  // error of the accepted connection's first Read
		wantCounter string // "proxied", "local", "direct" or "" (closed silently)
		wantPolled  bool   // the connection exposes its socket for polling
	}{
		{
			name: "v1 TCP4, payload in the same write", from: trustedFrom,
			writes:     []string{"PROXY TCP4 192.0.2.10 198.51.100.1 40000 443\r\n" + payload},
			wantRemote: "192.0.2.10:40000", wantLocal: "198.51.100.1:443", wantRead: payload, wantCounter: "proxied",
		},
		{
			name: "v1 TCP4, payload later", from: trustedFrom,
			writes:     []string{"PROXY TCP4 192.0.2.10 198.51.100.1 40000 443\r\n", payload},
			wantRemote: "192.0.2.10:40000", wantLocal: "198.51.100.1:443", wantRead: payload, wantCounter: "proxied", wantPolled: true,
		},
		{
			name: "v1 TCP6", from: trustedFrom,
			writes:     []string{"PROXY TCP6 2001:db8::7 2001:db8::1 40001 443\r\n" + payload},
			wantRemote: "[2001:db8::7]:40001", wantLocal: "[2001:db8::1]:443", wantRead: payload, wantCounter: "proxied",
		},
		{
			name: "v1 UNKNOWN keeps the socket's addresses", from: trustedFrom,
			writes:     []string{"PROXY UNKNOWN\r\n" + payload},
			wantRemote: trustedFrom, wantLocal: pipeLocal.String(), wantRead: payload, wantCounter: "local",
		},
		{
			name: "v2 TCP4", from: trustedFrom,
			writes:     []string{string(v2Header(0x21, 0x11, v4Block("203.0.113.5", "198.51.100.1", 41000, 443))) + payload},
			wantRemote: "203.0.113.5:41000", wantLocal: "198.51.100.1:443", wantRead: payload, wantCounter: "proxied",
		},
		{
			name: "v2 TCP6", from: trustedFrom,
			writes:     []string{string(v2Header(0x21, 0x21, v6Block("2001:db8:1::5", "2001:db8::1", 41001, 443))) + payload},
			wantRemote: "[2001:db8:1::5]:41001", wantLocal: "[2001:db8::1]:443", wantRead: payload, wantCounter: "proxied",
		},
		{
			name: "v2 TCP4 with a TLV", from: trustedFrom,
			writes:     []string{string(v2Header(0x21, 0x11, append(v4Block("203.0.113.6", "198.51.100.1", 41002, 443), tlv...))) + payload},
			wantRemote: "203.0.113.6:41002", wantLocal: "198.51.100.1:443", wantRead: payload, wantCounter: "proxied",
		},
		{
			name: "v2 LOCAL (health check)", from: trustedFrom,
			writes:     []string{string(v2Header(0x20, 0x00, nil)), payload},
			wantRemote: trustedFrom, wantLocal: pipeLocal.String(), wantRead: payload, wantCounter: "local", wantPolled: true,
		},
		{
			name: "v2 UDP4 is not a TCP client", from: trustedFrom,
			writes:      []string{string(v2Header(0x21, 0x12, v4Block("203.0.113.5", "198.51.100.1", 41000, 443))) + payload},
			wantRefused: refuseInvalid,
		},
		{
			name: "v2 unknown command", from: trustedFrom,
			writes:      []string{string(v2Header(0x2f, 0x11, v4Block("203.0.113.5", "198.51.100.1", 41000, 443))) + payload},
			wantRefused: refuseInvalid,
		},
		{
			name: "v1 malformed", from: trustedFrom,
			writes:      []string{"PROXY TCP4 not-an-address 198.51.100.1 40000 443\r\n" + payload},
			wantRefused: refuseInvalid,
		},
		{
			name: "v1 without CRLF", from: trustedFrom,
			writes:      []string{"PROXY TCP4 192.0.2.10 198.51.100.1 40000 443\n" + payload},
			wantRefused: refuseInvalid,
		},
		{
			name: "trusted without a header", from: trustedFrom,
			writes:      []string{payload},
			wantRefused: refuseMissing,
		},
		{
			name: "trusted, TLS without a header", from: trustedFrom,
			writes:      []string{"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"},
			wantRefused: refuseMissing,
		},
		{
			name: "trusted, silent", from: trustedFrom,
			wantRefused: refuseTimeout,
		},
		{
			name: "trusted, v2 signature then silence", from: trustedFrom,
			writes:      []string{"\r\n\r\n\x00\r\nQUIT\n"},
			wantRefused: refuseTimeout,
		},
		{
			name: "trusted, closed at once (TCP health check)", from: trustedFrom,
			close: true, wantRefused: "", wantCounter: "",
		},
		{
			name: "trusted as IPv4-mapped IPv6", from: "[::ffff:127.0.0.1]:50002",
			writes:     []string{"PROXY TCP4 192.0.2.11 198.51.100.1 40000 443\r\n" + payload},
			wantRemote: "192.0.2.11:40000", wantLocal: "198.51.100.1:443", wantRead: payload, wantCounter: "proxied",
		},
		{
			name: "untrusted, plain", from: untrustedFrom,
			writes:     []string{payload},
			wantRemote: untrustedFrom, wantLocal: pipeLocal.String(), wantRead: payload, wantCounter: "direct", wantPolled: true,
		},
		{
			name: "untrusted, almost a signature", from: untrustedFrom,
			writes:     []string{"PROXZ", "\r\n\r\n"},
			wantRemote: untrustedFrom, wantLocal: pipeLocal.String(), wantRead: "PROXZ\r\n\r\n", wantCounter: "direct", wantPolled: true,
		},
		{
			name: "untrusted, short and closed", from: untrustedFrom,
			writes: []string{"PRO"}, close: true,
			wantRemote: untrustedFrom, wantLocal: pipeLocal.String(), wantRead: "PRO", wantCounter: "direct", wantPolled: true,
		},
		{
			name: "untrusted with v1", from: untrustedFrom,
			writes:     []string{"PROXY TCP4 192.0.2.10 198.51.100.1 40000 443\r\n" + payload},
			wantRemote: untrustedFrom, wantLocal: pipeLocal.String(), wantReadErr: errUntrustedHeader, wantCounter: "direct", wantPolled: true,
		},
		{
			name: "untrusted with v2, signature split", from: untrustedFrom,
			writes:     []string{"\r\n\r\n\x00", "\r\nQUIT\n" + string(v2Header(0x21, 0x11, v4Block("203.0.113.5", "198.51.100.1", 41000, 443)))[12:]},
			wantRemote: untrustedFrom, wantLocal: pipeLocal.String(), wantReadErr: errUntrustedHeader, wantCounter: "direct", wantPolled: true,
		},
	}
	trusted, _ := parseProxyFrom("127.0.0.0/8")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer checkNoLeak(t)
			pl := newPipeListener()
			m := new(proxyMetrics)
			l := newProxyListener(pl, trusted, 200*time.Millisecond, m)
			defer l.Close()

			client := pl.dial(t, tt.from)
			defer client.Close()
			wrote := make(chan error, 1)
			go func() {
				for _, w := range tt.writes {
					if _, err := client.Write([]byte(w)); err != nil {
						wrote <- err
						return
					}
				}
				if tt.close {
					client.Close()
				}
				wrote <- nil
			}()

			accepted := make(chan net.Conn, 1)
			go func() {
				c, err := l.Accept()
				if err == nil {
					accepted <- c
				}
				close(accepted)
			}()

			if tt.wantRefused != "" || (tt.wantCounter == "" && tt.wantRemote == "") {
				// Refused or dropped: the client sees its end closed,
				// and nothing reaches Accept.
				if !tt.close {
					client.SetReadDeadline(time.Now().Add(5 * time.Second))
					if _, err := io.ReadAll(client); err != nil {
						t.Fatalf("client read: %v, want the server to close", err)
					}
				}
				l.Close()
				if c, ok := <-accepted; ok {
					t.Fatalf("Accept returned %v from %v", c, c.RemoteAddr())
				}
				got := map[string]int64{}
				for _, r := range []string{refuseUntrusted, refuseMissing, refuseInvalid, refuseTimeout} {
					got[r] = m.refused.Get(r).(interface{ Value() int64 }).Value()
				}
				for r, n := range got {
					want := int64(0)
					if r == tt.wantRefused {
						want = 1
					}
					if n != want {
						t.Errorf("refused[%s] = %d, want %d", r, n, want)
					}
				}
				if n := m.proxied.Value() + m.local.Value() + m.direct.Value(); n != 0 {
					t.Errorf("%d connections counted as handed on", n)
				}
				return
			}

			var c net.Conn
			select {
			case c = <-accepted:
			case <-time.After(5 * time.Second):
				t.Fatal("nothing accepted")
			}
			if c == nil {
				t.Fatal("Accept failed")
			}
			defer c.Close()
			if got := c.RemoteAddr().String(); got != tt.wantRemote {
				t.Errorf("RemoteAddr = %s, want %s", got, tt.wantRemote)
			}
			if got := c.LocalAddr().String(); got != tt.wantLocal {
				t.Errorf("LocalAddr = %s, want %s", got, tt.wantLocal)
			}
			if _, polled := c.(syscall.Conn); polled != tt.wantPolled {
				t.Errorf("connection exposes its socket: %v, want %v", polled, tt.wantPolled)
			}
			if nc, ok := c.(interface{ NetConn() net.Conn }); !ok || nc.NetConn() == nil {
				t.Errorf("connection does not unwrap to its socket")
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 64)
			var got []byte
			var rerr error
			for {
				n, err := c.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					rerr = err
					break
				}
				if len(got) >= len(tt.wantRead) && tt.wantReadErr == nil {
					break
				}
			}
			if tt.wantReadErr != nil {
				if !errors.Is(rerr, tt.wantReadErr) || len(got) != 0 {
					t.Errorf("read %q, %v; want nothing and %v", got, rerr, tt.wantReadErr)
				}
				if n := m.refused.Get(refuseUntrusted).(interface{ Value() int64 }).Value(); n != 1 {
					t.Errorf("refused[%s] = %d, want 1", refuseUntrusted, n)
				}
				// Refused once, counted once, closed.
				if _, err := c.Read(buf); !errors.Is(err, tt.wantReadErr) {
					t.Errorf("second read: %v", err)
				}
				if n := m.refused.Get(refuseUntrusted).(interface{ Value() int64 }).Value(); n != 1 {
					t.Errorf("refused[%s] = %d after a second read, want 1", refuseUntrusted, n)
				}
				client.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.ReadAll(client); err != nil {
					t.Errorf("client read: %v, want the server to close", err)
				}
			} else if string(got) != tt.wantRead {
				t.Errorf("read %q (%v), want %q", got, rerr, tt.wantRead)
			}
			counters := map[string]int64{"proxied": m.proxied.Value(), "local": m.local.Value(), "direct": m.direct.Value()}
			for k, n := range counters {
				want := int64(0)
				if k == tt.wantCounter {
					want = 1
				}
				if n != want {
					t.Errorf("%s = %d, want %d", k, n, want)
				}
			}
			c.Close()
			client.Close()
			<-wrote
		})
	}
}

// TestProxyListenerClose closes a listener while a trusted connection
// is still silent and another waits to be accepted: Close must not wait
// for the header timeout, and no goroutine may stay behind.
func TestProxyListenerClose(t *testing.T) {
	defer checkNoLeak(t)
	pl := newPipeListener()
	trusted, _ := parseProxyFrom("127.0.0.1")
	l := newProxyListener(pl, trusted, time.Hour, new(proxyMetrics))
	silent := pl.dial(t, "127.0.0.1:1000")
	defer silent.Close()
	waiting := pl.dial(t, "192.0.2.1:1000") // untrusted: handed on at once, never accepted
	defer waiting.Close()
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for the header timeout")
	}
	for _, c := range []net.Conn{silent, waiting} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(c); err != nil {
			t.Errorf("client read: %v, want the server to close", err)
		}
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
}

// TestProxyListenerInnerError ends the listener when its inner listener
// fails, handing the error to Accept.
func TestProxyListenerInnerError(t *testing.T) {
	defer checkNoLeak(t)
	pl := newPipeListener()
	l := newProxyListener(pl, nil, time.Second, new(proxyMetrics))
	pl.Close()
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept: %v, want the inner listener's net.ErrClosed", err)
	}
	l.Close()
}

// TestProxyListenerSlowHeaderDoesNotBlock checks that one trusted
// connection stalling in its header does not hold up the next ones.
func TestProxyListenerSlowHeaderDoesNotBlock(t *testing.T) {
	defer checkNoLeak(t)
	pl := newPipeListener()
	trusted, _ := parseProxyFrom("127.0.0.1")
	l := newProxyListener(pl, trusted, time.Hour, new(proxyMetrics))
	defer l.Close()
	slow := pl.dial(t, "127.0.0.1:1000")
	defer slow.Close()
	go slow.Write([]byte("PROXY TCP4 192.0.2.1")) // and never the rest
	fast := pl.dial(t, "127.0.0.1:1001")
	defer fast.Close()
	go fast.Write([]byte("PROXY TCP4 192.0.2.2 198.51.100.1 1 443\r\nhello"))
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.RemoteAddr().String(); got != "192.0.2.2:1" {
		t.Errorf("accepted %s first, want the fast one", got)
	}
}

func TestProxyMetricsExpVar(t *testing.T) {
	m := new(proxyMetrics)
	m.refused.Add(refuseMissing, 1) // before expVar: must not be lost or panic
	s := m.expVar().String()
	for _, want := range []string{"counter_proxied_connections", "counter_local_headers", "counter_direct_connections", `"missing_header": 1`, `"untrusted_header": 0`} {
		if !strings.Contains(s, want) {
			t.Errorf("proxy_protocol vars %s lack %q", s, want)
		}
	}
}

// fakeConn is a net.Conn that reads r, for the fuzz target.
type fakeConn struct {
	io.Reader
	net.Conn // nil; only the methods below are called
}

func (c *fakeConn) Read(p []byte) (int, error)            { return c.Reader.Read(p) }
func (c *fakeConn) SetReadDeadline(time.Time) error       { return nil }
func (c *fakeConn) RemoteAddr() net.Addr                  { return &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 1} }
func (c *fakeConn) LocalAddr() net.Addr                   { return pipeLocal }
func (c *fakeConn) SyscallConn() (syscall.RawConn, error) { return nil, errors.New("none") }

// FuzzReadProxyHeader feeds arbitrary bytes from a trusted address.
// Invariants: no panic; an accepted connection opened with a signature,
// reports a TCP client address, and yields exactly the bytes after the
// header; anything without a signature is refused.
func FuzzReadProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.10 198.51.100.1 40000 443\r\nhello"))
	f.Add([]byte("PROXY TCP6 2001:db8::7 2001:db8::1 40001 443\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\nabc"))
	f.Add(append(v2Header(0x21, 0x11, v4Block("203.0.113.5", "198.51.100.1", 41000, 443)), "xyz"...))
	f.Add(append(v2Header(0x21, 0x21, v6Block("2001:db8::5", "2001:db8::1", 41000, 443)), "xyz"...))
	f.Add(v2Header(0x20, 0x00, nil))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		m := new(proxyMetrics)
		c, reason := readProxyHeader(&fakeConn{Reader: bytes.NewReader(in)}, 0, m)
		startsSig := bytes.HasPrefix(in, []byte("PROXY")) || bytes.HasPrefix(in, []byte("\r\n\r\n\x00\r\nQUIT\n"))
		if c == nil {
			if reason == "" && len(in) != 0 {
				t.Fatalf("%q dropped silently", in)
			}
			return
		}
		if reason != "" {
			t.Fatalf("both a connection and a refusal (%s)", reason)
		}
		if !startsSig {
			t.Fatalf("%q accepted without a signature", in)
		}
		if _, ok := c.RemoteAddr().(*net.TCPAddr); !ok {
			t.Fatalf("RemoteAddr %#v is not TCP", c.RemoteAddr())
		}
		if _, ok := c.LocalAddr().(*net.TCPAddr); !ok {
			t.Fatalf("LocalAddr %#v is not TCP", c.LocalAddr())
		}
		_ = c.RemoteAddr().String()
		rest, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasSuffix(in, rest) || len(rest) == len(in) {
			t.Fatalf("after the header: %q, not a proper suffix of %q", rest, in)
		}
		if m.proxied.Value()+m.local.Value() != 1 {
			t.Fatalf("counted %d proxied, %d local", m.proxied.Value(), m.local.Value())
		}
	})
}

// FuzzHasProxySignature checks the untrusted-side detector: it reports
// exactly whether the input opens with a v1 or v2 signature, and it only
// peeks, so every byte is still there to read.
func FuzzHasProxySignature(f *testing.F) {
	for _, s := range []string{"", "P", "PROXY", "PROXY TCP4", "PROXZ", "\r\n\r\n\x00\r\nQUIT\n", "\r\n\r\n\x00\r\nQUIT", "\x16\x03\x01", "GET /"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(in), 16)
		got, err := hasProxySignature(br)
		if err != nil {
			t.Fatal(err)
		}
		want := bytes.HasPrefix(in, []byte("PROXY")) || bytes.HasPrefix(in, []byte("\r\n\r\n\x00\r\nQUIT\n"))
		if got != want {
			t.Fatalf("hasProxySignature(%q) = %v, want %v", in, got, want)
		}
		rest, _ := io.ReadAll(br)
		if !bytes.Equal(rest, in) {
			t.Fatalf("bytes consumed: %q left of %q", rest, in)
		}
	})
}
