package derp

import (
	"bufio"
	"context"
	"crypto/x509"
	"github.com/openderp/openderp/internal/leakcheck"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/openderp/openderp/derp/derptest"
	"github.com/openderp/openderp/key"
)

// testServer is a Server behind a loopback TCP listener.
type testServer struct {
	s    *Server
	ln   net.Listener
	addr string
	wg   sync.WaitGroup
}

func newTestServer(t testing.TB) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{s: NewServer(key.NewNode(), t.Logf), ln: ln, addr: ln.Addr().String()}
	ts.wg.Add(1)
	go func() {
		defer ts.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			ts.wg.Add(1)
			go func() {
				defer ts.wg.Done()
				brw := bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc))
				ts.s.Accept(context.Background(), nc, brw, nc.RemoteAddr().String())
			}()
		}
	}()
	t.Cleanup(ts.close)
	return ts
}

func (ts *testServer) close() {
	ts.ln.Close()
	ts.s.Close()
	ts.wg.Wait()
}

// dial connects a new client with a fresh key.
func (ts *testServer) dial(t testing.TB, opts ...ClientOpt) *Client {
	t.Helper()
	return ts.dialKey(t, key.NewNode(), opts...)
}

func (ts *testServer) dialKey(t testing.TB, priv key.NodePrivate, opts ...ClientOpt) *Client {
	t.Helper()
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	brw := bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc))
	c, err := NewClient(priv, nc, brw, t.Logf, opts...)
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	m := recvMsg(t, c)
	if _, ok := m.(ServerInfoMessage); !ok {
		t.Fatalf("first message = %T, want ServerInfoMessage", m)
	}
	return c
}

// recvMsg receives one message with a deadline.
func recvMsg(t testing.TB, c *Client) ReceivedMessage {
	t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.nc.SetReadDeadline(time.Time{})
	m, err := c.Recv()
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	return m
}

// recvPacket receives messages until a packet arrives, skipping keep-alives.
func recvPacket(t testing.TB, c *Client) ReceivedPacket {
	t.Helper()
	for range 100 {
		switch m := recvMsg(t, c).(type) {
		case ReceivedPacket:
			return m
		case KeepAliveMessage:
		default:
			t.Fatalf("got %#v, want a packet", m)
		}
	}
	t.Fatal("no packet in 100 messages")
	return ReceivedPacket{}
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkNoLeaks fails if goroutines running this package's code outlive
// the test. It waits briefly for goroutines that are on their way out.
func checkNoLeaks(t testing.TB) {
	t.Helper()
	if leaked := leakcheck.Wait(5*time.Second, "openderp/derp."); leaked != "" {
		t.Fatalf("goroutines left behind:\n%s", leaked)
	}
}

func bufioRW(nc net.Conn) *bufio.ReadWriter {
	return bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc))
}

func contextWithCancel(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithCancel(r.Context())
}

func keyForTest() key.NodePrivate { return key.NewNode() }

func parseCertForTest(der []byte) (*x509.Certificate, error) { return x509.ParseCertificate(der) }

func derptestPipe() (net.Conn, net.Conn) { return derptest.Pipe() }
