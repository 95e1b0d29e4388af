package derphttp

import (
	"bytes"
	"crypto/tls"
	"net"
	"reflect"
	"syscall"
	"unsafe"
)

// An idle DERP client over TLS would otherwise wait inside
// tls.Conn.Read: on a goroutine stack grown by the TLS record layer, with
// crypto/tls keeping the buffers it grew for the handshake and the last
// records (its raw input and handshake buffers, a few KiB together) and
// the DERP reader keeping a buffer of its own. tlsIdleConn lets the DERP
// read loop wait the way it does on plain TCP instead: in the runtime
// poller, on the socket under the TLS layer, with no buffer held.
//
// Waiting on the socket is only right when crypto/tls has nothing
// buffered, and Go offers no way to ask. tlsIdleConn finds out by reading
// three unexported fields of tls.Conn, located by name and type with
// package reflect when the program starts: rawInput and hand
// (bytes.Buffer) and input (bytes.Reader). When all three are empty and
// the socket has nothing either, it drops their storage before it parks,
// so that an idle connection holds none. This is a last resort, bounded
// as follows:
//
//   - if any of the fields is missing or has another type (a future Go
//     release), tlsIdleConnFor returns nil and the read loop works as
//     before; TestTLSIdleLayout fails loudly in that case so the fallback
//     is noticed;
//   - the fields are only touched by the connection's single reader
//     goroutine, between two calls to Read, which is when crypto/tls does
//     not touch them either;
//   - it is only used on connections whose layers under TLS buffer
//     nothing (the listener's recordConn and limitConn over a socket).
//
// See docs/performance.md#idle-tls.

// tlsInputLayout holds the offsets of tls.Conn's input buffers; ok is
// false if they could not all be found with the expected types.
var tlsInputLayout = findTLSInputLayout()

type tlsInputOffsets struct {
	ok                    bool
	rawInput, input, hand uintptr
	missing               string // what was not found, for the layout test
}

func findTLSInputLayout() tlsInputOffsets {
	var l tlsInputOffsets
	ct := reflect.TypeFor[tls.Conn]()
	for _, f := range []struct {
		name string
		typ  reflect.Type
		off  *uintptr
	}{
		{"rawInput", reflect.TypeFor[bytes.Buffer](), &l.rawInput},
		{"input", reflect.TypeFor[bytes.Reader](), &l.input},
		{"hand", reflect.TypeFor[bytes.Buffer](), &l.hand},
	} {
		sf, ok := ct.FieldByName(f.name)
		if !ok || sf.Type != f.typ || len(sf.Index) != 1 {
			l.missing = "tls.Conn." + f.name + " of type " + f.typ.String()
			return l
		}
		*f.off = sf.Offset
	}
	l.ok = true
	return l
}

// tlsInput gives access to a tls.Conn's input buffers.
type tlsInput struct {
	rawInput *bytes.Buffer // records read from the socket, not yet decrypted
	input    *bytes.Reader // decrypted application data not yet read
	hand     *bytes.Buffer // handshake message bytes not yet processed
}

func tlsInputOf(tc *tls.Conn) tlsInput {
	p := unsafe.Pointer(tc)
	return tlsInput{
		rawInput: (*bytes.Buffer)(unsafe.Add(p, tlsInputLayout.rawInput)),
		input:    (*bytes.Reader)(unsafe.Add(p, tlsInputLayout.input)),
		hand:     (*bytes.Buffer)(unsafe.Add(p, tlsInputLayout.hand)),
	}
}

// buffered reports whether crypto/tls holds input not yet returned by
// Read.
func (t tlsInput) buffered() bool {
	return t.rawInput.Len() > 0 || t.input.Len() > 0 || t.hand.Len() > 0
}

// release drops the storage of the empty buffers; crypto/tls allocates
// anew when input arrives.
func (t tlsInput) release() {
	*t.rawInput = bytes.Buffer{}
	*t.input = bytes.Reader{}
	*t.hand = bytes.Buffer{}
}

// tlsIdleConn is a hijacked TLS connection that the DERP read loop can
// wait on without buffers (see derp.ReadWaiter).
type tlsIdleConn struct {
	net.Conn                 // what the HTTP server handed over; all calls but WaitReadable go here
	in       tlsInput        // owned by the reader
	raw      syscall.RawConn // the socket under the TLS layer
	peek     func(fd uintptr) bool
	waitErr  error // owned by the reader: what peek met
	released bool  // owned by the reader: in was released during this wait
}

// tlsIdleConnFor returns nc wrapped for idle waits if nc is a TLS
// connection (perhaps wrapped by a front end that buffers nothing) over
// a socket, through layers known to buffer nothing, and crypto/tls's
// layout was found; otherwise nil.
func tlsIdleConnFor(nc net.Conn) *tlsIdleConn {
	if !tlsInputLayout.ok || !canPeek {
		return nil
	}
	var tc *tls.Conn
	for c := nc; tc == nil; {
		switch v := c.(type) {
		case *tls.Conn:
			tc = v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	under := tc.NetConn()
	for {
		switch v := under.(type) {
		case *recordConn:
			if v.pending() {
				return nil // it holds input that the socket no longer shows
			}
			under = v.Conn
			continue
		case *limitConn:
			under = v.Conn
			continue
		}
		break
	}
	tcp, ok := under.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		return nil
	}
	c := &tlsIdleConn{Conn: nc, in: tlsInputOf(tc), raw: raw}
	c.peek = c.peekFd
	return c
}

// NetConn returns the connection it wraps.
func (c *tlsIdleConn) NetConn() net.Conn { return c.Conn }

// WaitReadable blocks until a Read will not block: crypto/tls holds
// input, or the socket has some, or it failed or reached its end. While
// it waits in the poller, neither crypto/tls nor it holds a read buffer.
// Only the connection's reader may call it, between Reads.
func (c *tlsIdleConn) WaitReadable() error {
	if c.in.buffered() {
		return nil
	}
	c.waitErr, c.released = nil, false
	if err := c.raw.Read(c.peek); err != nil {
		return err
	}
	return c.waitErr
}

// peekFd runs in the poller's callback: it reports whether fd has input
// (or an error or end of stream) without taking it, and the first time
// it finds nothing, releases crypto/tls's empty buffers before the
// goroutine parks.
func (c *tlsIdleConn) peekFd(fd uintptr) bool {
	ready, err := peekSocket(fd)
	if !ready {
		if !c.released {
			c.in.release()
			c.released = true
		}
		return false
	}
	c.waitErr = err
	return true
}
