package derphttp_test

import (
	"bufio"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/openderp/openderp/derphttp"
)

// TestGateWaitsForRequestHead: a plain connection is handed to net/http
// only once its whole request header has arrived, so a client dribbling
// its request (slowloris) holds no net/http goroutine or buffers; its
// request is still served once complete.
func TestGateWaitsForRequestHead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ll := derphttp.NewLimitListener(ln, derphttp.Limits{HandshakeTimeout: time.Minute})
	var mu sync.Mutex
	var newConns int
	hs := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, r.Header.Get("X-Part"))
		}),
		ConnContext: ll.ConnContext,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				mu.Lock()
				newConns++
				mu.Unlock()
			}
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	served := make(chan struct{})
	go func() { defer close(served); hs.Serve(ll) }()
	defer func() { hs.Close(); ll.Close(); <-served }()

	get := func(c net.Conn) string {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("reading response: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	slow := dial()
	io.WriteString(slow, "GET / HTTP/1.1\r\nHost: a\r\nX-Part: slow")
	// A complete request on a second connection, written after the
	// first one's partial header, is served while the first still waits.
	fast := dial()
	io.WriteString(fast, "GET / HTTP/1.1\r\nHost: a\r\nX-Part: fast\r\nConnection: close\r\n\r\n")
	if got := get(fast); got != "fast" {
		t.Fatalf("fast request answered %q", got)
	}
	mu.Lock()
	n := newConns
	mu.Unlock()
	if runtime.GOOS == "linux" && n != 1 {
		t.Errorf("net/http saw %d connections while one request header was incomplete, want 1", n)
	}
	io.WriteString(slow, "er\r\nConnection: close\r\n\r\n")
	if got := get(slow); got != "slower" {
		t.Fatalf("dribbled request answered %q, want %q", got, "slower")
	}
}
