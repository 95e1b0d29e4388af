package derphttp_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derp/derptest"
	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/key"
)

// hijackRecorder is a ResponseRecorder that can be hijacked onto one end
// of an in-memory pipe.
type hijackRecorder struct {
	*httptest.ResponseRecorder
	conn     net.Conn
	br       *bufio.Reader
	hijacked bool
}

func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h.hijacked = true
	return h.conn, bufio.NewReadWriter(h.br, bufio.NewWriter(h.conn)), nil
}

func TestHandlerResponses(t *testing.T) {
	s := derp.NewServer(key.NewNode(), t.Logf)
	defer s.Close()
	h := derphttp.LoggingHandler(s, t.Logf)
	tests := []struct {
		name     string
		method   string
		path     string
		upgrade  string
		wantCode int
		wantBody string
	}{
		{"no upgrade", "GET", "/derp", "", 426, "this URL is for DERP clients: it needs an \"Upgrade: DERP\" or WebSocket request\n"},
		{"weird upgrade", "GET", "/derp", "h2c", 426, "this URL is for DERP clients: it needs an \"Upgrade: DERP\" or WebSocket request\n"},
		{"probe", "GET", "/derp/probe", "", 200, ""},
		{"latency check", "HEAD", "/derp/latency-check", "DERP", 200, ""},
		{"probe bad method", "POST", "/derp/probe", "", 405, "method not allowed: the latency probe answers GET and HEAD only\n"},
		// httptest.ResponseRecorder cannot be hijacked, like HTTP/2.
		{"not hijackable", "GET", "/derp", "DERP", 500, "cannot take over this connection for DERP (HTTP/2, or a proxy in between); connect with HTTP/1.1\n"},
		{"websocket not hijackable", "POST", "/derp", "WebSocket", 500, "cannot take over this connection for DERP (HTTP/2, or a proxy in between); connect with HTTP/1.1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, nil)
			if tt.upgrade != "" {
				r.Header.Set("Upgrade", tt.upgrade)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantCode || w.Body.String() != tt.wantBody {
				t.Errorf("got %d %q; want %d %q", w.Code, w.Body.String(), tt.wantCode, tt.wantBody)
			}
		})
	}
}

func TestHandler101Bytes(t *testing.T) {
	s := derp.NewServer(key.NewNode(), t.Logf)
	defer s.Close()
	for _, fast := range []bool{false, true} {
		srv, cli := derptest.Pipe()
		r := httptest.NewRequest("GET", "/derp", nil)
		r.Header.Set("Upgrade", "derp")
		if fast {
			r.Header.Set("Derp-Fast-Start", "1")
		}
		w := &hijackRecorder{ResponseRecorder: httptest.NewRecorder(), conn: srv, br: bufio.NewReader(srv)}
		done := make(chan struct{})
		go func() {
			derphttp.Handler(s).ServeHTTP(w, r)
			close(done)
		}()
		br := bufio.NewReader(cli)
		want := "HTTP/1.1 101 Switching Protocols\r\n" +
			"Upgrade: DERP\r\n" +
			"Connection: Upgrade\r\n" +
			"Derp-Version: 2\r\n" +
			"Derp-Public-Key: " + s.PublicKey().UntypedHexString() + "\r\n\r\n"
		if !fast {
			got := make([]byte, len(want))
			if _, err := io.ReadFull(br, got); err != nil {
				t.Fatal(err)
			}
			if string(got) != want {
				t.Errorf("101 reply = %q; want %q", got, want)
			}
		}
		// Next comes the ServerKey frame in both modes.
		ft, _, err := derp.ReadFrameHeader(br)
		if err != nil || ft != derp.FrameServerKey {
			t.Errorf("fast=%v: first frame %v, %v; want ServerKey", fast, ft, err)
		}
		cli.Close()
		<-done
	}
}

func TestProbeHandler(t *testing.T) {
	for _, m := range []string{"GET", "HEAD"} {
		w := httptest.NewRecorder()
		derphttp.ProbeHandler(w, httptest.NewRequest(m, "/derp/probe", nil))
		if w.Code != 200 || w.Header().Get("Access-Control-Allow-Origin") != "*" || w.Body.Len() != 0 {
			t.Errorf("%s: %d %v %q", m, w.Code, w.Header(), w.Body)
		}
	}
}

func TestServeNoContent(t *testing.T) {
	long := strings.Repeat("a", 64)
	tests := []struct {
		challenge string
		set       bool
		want      string
	}{
		{"", false, ""},
		{"abc", true, "response abc"},
		{"A-Z.a_z-09", true, "response A-Z.a_z-09"},
		{long, true, "response " + long},
		{long + "a", true, ""},
		{"has space", true, ""},
		{"nul\x00", true, ""},
		{"ünï", true, ""},
		{"semi;colon", true, ""},
		{"ts_100.64.0.1", true, "response ts_100.64.0.1"},
		{"ts_2001:db8::1", true, "response ts_2001:db8::1"}, // ':' allowed since v1.82
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/generate_204?t=1700000000", nil)
		if tt.set {
			r.Header["X-Tailscale-Challenge"] = []string{tt.challenge}
		}
		w := httptest.NewRecorder()
		derphttp.ServeNoContent(w, r)
		got, present := w.Header()["X-Tailscale-Response"]
		if w.Code != http.StatusNoContent || w.Body.Len() != 0 {
			t.Errorf("challenge %q: status %d body %q", tt.challenge, w.Code, w.Body)
		}
		if cc := w.Header().Get("Cache-Control"); cc != "no-cache, no-store, must-revalidate, no-transform, max-age=0" {
			t.Errorf("challenge %q: Cache-Control %q", tt.challenge, cc)
		}
		if tt.want == "" {
			if present {
				t.Errorf("challenge %q: response header %q; want none", tt.challenge, got)
			}
		} else if w.Header().Get("X-Tailscale-Response") != tt.want {
			t.Errorf("challenge %q: response %q; want %q", tt.challenge, got, tt.want)
		}
	}
}

func TestWebSocketWrongProtocol(t *testing.T) {
	// A WebSocket request whose protocol header mentions derp only as a
	// substring is accepted by the library without a subprotocol and
	// then closed with policy violation.
	ts := newTestServer(t, serverOpts{websocket: true})
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(nc, "GET /derp HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: notderpx\r\n\r\n")
	br := bufio.NewReader(nc)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", res.StatusCode)
	}
	// Read the close frame: 0x88, length, status 1008.
	hdr := make([]byte, 4)
	if _, err := io.ReadFull(br, hdr); err != nil {
		t.Fatal(err)
	}
	if hdr[0] != 0x88 || hdr[2] != 0x03 || hdr[3] != 0xF0 {
		t.Fatalf("close frame header %x; want 88 xx 03f0 (1008)", hdr)
	}
	rest := make([]byte, int(hdr[1])-2)
	io.ReadFull(br, rest)
	if string(rest) != "client must speak the derp subprotocol" {
		t.Errorf("close reason %q", rest)
	}
	if derphttp.WebSocketAccepts() < 0 {
		t.Error("negative counter")
	}
}

// FuzzHandler feeds arbitrary HTTP requests to the /derp handler over an
// in-memory connection. Whatever the input, the handler must answer with
// one of its documented statuses or start DERP, and return once the
// client side is gone.
func FuzzHandler(f *testing.F) {
	f.Add([]byte("GET /derp HTTP/1.1\r\nHost: x\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n\r\n"))
	f.Add([]byte("GET /derp HTTP/1.1\r\nHost: x\r\nUpgrade: DERP\r\nDerp-Fast-Start: 1\r\n\r\n\x02\x00\x00\x00\x20"))
	f.Add([]byte("POST /derp/probe HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("GET /derp HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"))
	f.Add([]byte("GET /derp HTTP/1.1\r\nHost: x\r\nUpgrade: nope\r\n\r\n"))
	s := derp.NewServer(key.NewNode(), nil)
	f.Cleanup(func() { s.Close() })
	h := derphttp.Handler(s)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			return
		}
		srv, cli := derptest.Pipe()
		cli.Close() // the client has sent everything and gone
		w := &hijackRecorder{ResponseRecorder: httptest.NewRecorder(), conn: srv, br: bufio.NewReader(srv)}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
		if ctx.Err() != nil {
			t.Fatal("handler did not return in time")
		}
		if w.hijacked {
			return
		}
		switch w.Code {
		case 200, 405, 426:
		default:
			t.Fatalf("status %d for %q", w.Code, b)
		}
	})
}
