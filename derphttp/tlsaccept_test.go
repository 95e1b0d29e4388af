package derphttp_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openderp/openderp/derphttp"
)

// holdingConn sends its first write (the ClientHello) at once and keeps
// every later one until flush, so that the client's last handshake flight
// and its first request reach the server in one segment.
type holdingConn struct {
	net.Conn
	mu     sync.Mutex
	writes int          // guarded by mu
	held   bytes.Buffer // guarded by mu
}

func (c *holdingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	if c.writes == 1 {
		return c.Conn.Write(p)
	}
	return c.held.Write(p)
}

func (c *holdingConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.Conn.Write(c.held.Bytes())
	c.held.Reset()
	return err
}

// TestTLSLimitListenerServes checks that connections whose TLS handshake
// the listener completed are served, with Request.TLS filled in, also when
// the request arrives together with the end of the handshake (the listener
// must not then wait for more input that never comes), over TLS 1.2 and
// 1.3; and that failed handshakes are counted and logged.
func TestTLSLimitListenerServes(t *testing.T) {
	ca := newTestCA(t)
	for _, under := range []struct {
		name string
		wrap func(net.Listener) net.Listener
	}{
		{"TCP", func(ln net.Listener) net.Listener { return ln }},
		// A wrapper under the listener that reads ahead (as a PROXY
		// protocol parser may) and still exposes the socket: the
		// listener must not wait on the socket then.
		{"read-ahead wrapper", func(ln net.Listener) net.Listener { return readAheadListener{ln} }},
	} {
		t.Run(under.name, func(t *testing.T) { testTLSLimitListener(t, ca, under.wrap) })
	}
}

func testTLSLimitListener(t *testing.T, ca *testCA, wrap func(net.Listener) net.Listener) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := wrap(tcp)
	var logBuf syncBuffer
	ll := derphttp.NewTLSLimitListener(ln, derphttp.Limits{HandshakeTimeout: 10 * time.Second}, derphttp.TLSOptions{
		Config:   &tls.Config{Certificates: []tls.Certificate{ca.leaf}, NextProtos: []string{"http/1.1"}},
		ErrorLog: log.New(&logBuf, "", 0),
	})
	hs := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.TLS == nil {
				http.Error(w, "no TLS state", http.StatusInternalServerError)
				return
			}
			io.WriteString(w, strconv.Itoa(int(r.TLS.Version)))
		}),
		ConnContext: ll.ConnContext,
		ErrorLog:    log.New(io.Discard, "", 0),
	}
	served := make(chan struct{})
	go func() { defer close(served); hs.Serve(ll) }()
	defer func() { hs.Close(); ll.Close(); <-served }()

	// A TLS 1.2 client ends a full handshake with the server's Finished,
	// so only a resumed one (where the client speaks last) can send its
	// request along.
	sessions := tls.NewLRUClientSessionCache(4)
	for _, tc := range []struct {
		name      string
		version   uint16
		coalesced bool
	}{
		{"TLS 1.3", tls.VersionTLS13, false},
		{"TLS 1.3, request with the handshake's end", tls.VersionTLS13, true},
		{"TLS 1.2", tls.VersionTLS12, false},
		{"TLS 1.2 resumed, request with the handshake's end", tls.VersionTLS12, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", ll.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			hc := &holdingConn{Conn: nc}
			var under net.Conn = nc
			if tc.coalesced {
				under = hc
			}
			cfg := &tls.Config{RootCAs: ca.pool, ServerName: "derp.test", MinVersion: tc.version, MaxVersion: tc.version}
			if tc.version == tls.VersionTLS12 {
				cfg.ClientSessionCache = sessions
			}
			c := tls.Client(under, cfg)
			if err := c.Handshake(); err != nil {
				t.Fatal(err)
			}
			if tc.version == tls.VersionTLS12 && tc.coalesced && !c.ConnectionState().DidResume {
				t.Fatal("TLS 1.2 session not resumed")
			}
			if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: derp.test\r\nConnection: close\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			if err := hc.flush(); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no response: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || string(body) != strconv.Itoa(int(tc.version)) {
				t.Fatalf("got %s %q, want 200 %q", resp.Status, body, strconv.Itoa(int(tc.version)))
			}
		})
	}

	t.Run("failed handshake", func(t *testing.T) {
		nc, err := net.Dial("tcp", ll.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		errs := func() int { n, _ := strconv.Atoi(ll.ExpVar().Get("counter_tls_handshake_errors").String()); return n }
		before := errs()
		nc.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
		waitClosed(t, nc, 10*time.Second)
		waitFor(t, "error counted", func() bool { return errs() == before+1 })
		if got := logBuf.String(); !strings.Contains(got, "http: TLS handshake error from 127.0.0.1:") {
			t.Errorf("log = %q, want a handshake error line", got)
		}
	})
	waitFor(t, "connections gone", func() bool { o, p := ll.Counts(); return o == 0 && p == 0 })
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// readAheadListener's connections read from the socket through a 4 KiB
// buffer, and still offer the socket (syscall.Conn).
type readAheadListener struct{ net.Listener }

func (l readAheadListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &readAheadConn{Conn: c, br: bufio.NewReaderSize(c, 4096)}, nil
}

type readAheadConn struct {
	net.Conn
	br *bufio.Reader
}

func (c *readAheadConn) Read(p []byte) (int, error) { return c.br.Read(p) }

func (c *readAheadConn) SyscallConn() (syscall.RawConn, error) {
	return c.Conn.(syscall.Conn).SyscallConn()
}
