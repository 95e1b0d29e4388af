package latest

import (
	"context"
	"crypto/tls"
	"net/http/httptest"
	"testing"
	"time"

	ourderp "github.com/openderp/openderp/derp"
	ourhttp "github.com/openderp/openderp/derphttp"
	ourkey "github.com/openderp/openderp/key"
	tsderp "tailscale.com/derp"
	tshttp "tailscale.com/derp/derphttp"
	"tailscale.com/net/netmon"
	tskey "tailscale.com/types/key"
)

// Their derphttp client against our handler, over plain HTTP, over TLS
// with our meta certificate in the chain (their client then skips the
// upgrade round trip), and over WebSocket: two clients connect, and a
// packet from one reaches the other with the right source.
func TestTheirHTTPClientOurHandler(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tls    bool
		ws     bool
		wantWS int64
	}{
		{name: "http"},
		{name: "tls+metacert", tls: true},
		{name: "websocket", tls: true, ws: true, wantWS: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ws {
				requireWebSocketClient(t)
				t.Setenv("TS_DEBUG_DERP_WS_CLIENT", "1")
			}
			s := ourderp.NewServer(ourkey.NewNode(), t.Logf)
			defer s.Close()
			srv := httptest.NewUnstartedServer(ourhttp.WebSocketHandler(s, ourhttp.Handler(s)))
			if tc.tls {
				c, _ := testCert(t)
				srv.TLS = &tls.Config{Certificates: []tls.Certificate{*ourhttp.AppendMetaCert(&c, s.MetaCert())}}
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()
			url := srv.URL + "/derp"

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ws0 := ourhttp.WebSocketAccepts()
			mk := func() *tshttp.Client {
				c, err := tshttp.NewClient(tskey.NewNode(), url, t.Logf, netmon.NewStatic())
				if err != nil {
					t.Fatal(err)
				}
				c.TLSConfig = &tls.Config{RootCAs: sharedPool}
				t.Cleanup(func() { c.Close() })
				if err := c.Connect(ctx); err != nil {
					t.Fatalf("connect: %v", err)
				}
				return c
			}
			a, b := mk(), mk()
			if got, want := a.ServerPublicKey().String(), s.PublicKey().String(); got != want {
				t.Fatalf("their client learned server key %s, want %s", got, want)
			}
			recvUntil(t, b, func(m tsderp.ReceivedMessage) bool {
				_, ok := m.(tsderp.ServerInfoMessage)
				return ok
			})
			if err := a.Send(b.SelfPublicKey(), []byte("hello")); err != nil {
				t.Fatal(err)
			}
			recvUntil(t, b, func(m tsderp.ReceivedMessage) bool {
				p, ok := m.(tsderp.ReceivedPacket)
				if ok && (string(p.Data) != "hello" || p.Source != a.SelfPublicKey()) {
					t.Fatalf("got %q from %v", p.Data, p.Source)
				}
				return ok
			})
			if got := ourhttp.WebSocketAccepts() - ws0; got != tc.wantWS {
				t.Errorf("our handler accepted %d WebSocket connections, want %d", got, tc.wantWS)
			}
		})
	}
}

// recvUntil receives on c until done accepts a message, failing after 20
// messages.
func recvUntil(t *testing.T, c *tshttp.Client, done func(tsderp.ReceivedMessage) bool) {
	t.Helper()
	for range 20 {
		m, err := c.Recv()
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		if done(m) {
			return
		}
	}
	t.Fatal("wanted message never came")
}
