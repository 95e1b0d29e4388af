package derphttp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"runtime"
	"testing"
	"time"
)

// TestTLSIdleLayout fails loudly when crypto/tls.Conn no longer has the
// input buffers tlsidle.go reads (a new Go release): idle TLS clients then
// fall back to waiting inside tls.Conn.Read, with its buffers, which works
// but costs memory. Look at the new layout and adapt findTLSInputLayout.
func TestTLSIdleLayout(t *testing.T) {
	if !tlsInputLayout.ok {
		t.Fatalf("crypto/tls layout of %s: %s not found; idle TLS connections keep their buffers", runtime.Version(), tlsInputLayout.missing)
	}
}

// heldWrites passes writes through unless holding, when it keeps them
// until release sends them all in one write.
type heldWrites struct {
	net.Conn
	holding bool // owned by the test goroutine
	buf     bytes.Buffer
}

func (c *heldWrites) Write(p []byte) (int, error) {
	if c.holding {
		return c.buf.Write(p)
	}
	return c.Conn.Write(p)
}

func (c *heldWrites) release() error {
	c.holding = false
	_, err := c.Conn.Write(c.buf.Bytes())
	c.buf.Reset()
	return err
}

// tlsPair returns the server and client ends of a TLS connection over
// loopback TCP, handshake done, the server end as the listener makes it.
func tlsPair(t *testing.T) (srv *tls.Conn, cli *tls.Conn, hold *heldWrites) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"t"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ll := NewTLSLimitListener(ln, Limits{}, TLSOptions{Config: &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv}},
	}})
	t.Cleanup(func() { ll.Close() })
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	hold = &heldWrites{Conn: nc}
	cli = tls.Client(hold, &tls.Config{InsecureSkipVerify: true})
	if err := cli.Handshake(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	cli.Write([]byte("x")) // the listener hands over connections that spoke
	c, err := ll.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*tls.Conn), cli, hold
}

// TestTLSIdleConnWait checks WaitReadable against what crypto/tls really
// holds: it returns at once while a record is partly read or more records
// wait in crypto/tls's buffer, releases the buffers when all is read, and
// then returns only once the peer writes again (or closes).
func TestTLSIdleConnWait(t *testing.T) {
	if !tlsInputLayout.ok {
		t.Skip("layout not found; see TestTLSIdleLayout")
	}
	srv, cli, hold := tlsPair(t)
	srv.SetReadDeadline(time.Now().Add(10 * time.Second))
	// The "x" may have come with the client's last handshake record, and
	// the listener then keeps it aside (see recordConn): as the HTTP
	// server does with a request, read it before wrapping.
	if _, err := io.ReadFull(srv, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	ic := tlsIdleConnFor(srv)
	if ic == nil {
		t.Fatal("no idle wrapper for a listener's TLS connection")
	}
	readN := func(n int) []byte {
		t.Helper()
		b := make([]byte, n)
		if _, err := io.ReadFull(ic, b); err != nil {
			t.Fatal(err)
		}
		return b
	}

	// Two records in one segment: after reading part of the first, and
	// after the whole first, crypto/tls still holds input while the socket
	// has none, and WaitReadable must not wait for the socket.
	hold.holding = true
	cli.Write(bytes.Repeat([]byte{1}, 100))
	cli.Write(bytes.Repeat([]byte{2}, 100))
	if err := hold.release(); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		n    int
		want byte
	}{{10, 1}, {90, 1}, {50, 2}, {50, 2}} {
		wait := make(chan error, 1)
		go func() { wait <- ic.WaitReadable() }()
		select {
		case err := <-wait:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			srv.Close() // ends the wait
			<-wait
			t.Fatal("WaitReadable waited on the socket while crypto/tls held input")
		}
		if b := readN(step.n); b[0] != step.want || b[len(b)-1] != step.want {
			t.Fatalf("read %v..., want %d", b[:4], step.want)
		}
	}
	if ic.in.buffered() {
		t.Fatal("crypto/tls still holds input after everything was read")
	}

	// Nothing left: the poller callback finds the socket empty and
	// releases crypto/tls's buffers before parking.
	if ic.in.rawInput.Cap() == 0 {
		t.Fatal("crypto/tls kept no raw input buffer to release; the test proves nothing")
	}
	if err := ic.raw.Read(func(fd uintptr) bool { ic.peekFd(fd); return true }); err != nil {
		t.Fatal(err)
	}
	if !ic.released || ic.in.rawInput.Cap() != 0 || ic.in.hand.Cap() != 0 || ic.in.input.Size() != 0 {
		t.Fatalf("after an empty peek: released %v, raw input cap %d, hand cap %d", ic.released, ic.in.rawInput.Cap(), ic.in.hand.Cap())
	}
	// And it returns once the peer writes.
	done := make(chan error, 1)
	go func() { done <- ic.WaitReadable() }()
	cli.Write([]byte("later"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if b := readN(5); string(b) != "later" {
		t.Fatalf("read %q after the wait", b)
	}

	// End of stream is reported.
	cli.Close()
	if err := ic.WaitReadable(); err != nil && err != io.EOF {
		t.Fatalf("WaitReadable after close = %v", err)
	}
	if _, err := ic.Read(make([]byte, 1)); err == nil {
		t.Fatal("Read after the peer closed succeeded")
	}
}

// TestTLSIdleConnForPending checks that a connection whose record layer
// still holds input the socket no longer shows is not given the idle
// wrapper, which would wait on the silent socket with that input unread.
func TestTLSIdleConnForPending(t *testing.T) {
	if !tlsInputLayout.ok {
		t.Skip("layout not found; see TestTLSIdleLayout")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cli, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, tc := range []struct {
		name  string
		extra []byte
		want  bool
	}{
		{"nothing kept aside", nil, true},
		{"bytes kept aside", []byte{23, 3, 3, 0, 1, 0}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := &recordConn{Conn: &limitConn{Conn: srv}, done: true, extra: tc.extra}
			got := tlsIdleConnFor(tls.Server(rc, &tls.Config{})) != nil
			if got != tc.want {
				t.Fatalf("idle wrapper given: %v, want %v", got, tc.want)
			}
		})
	}
}
