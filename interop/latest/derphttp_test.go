package latest

import (
	"context"
	"testing"
	"time"

	ourderp "github.com/openderp/openderp/derp"
	ourhttp "github.com/openderp/openderp/derphttp"
	ourkey "github.com/openderp/openderp/key"
	"net/http/httptest"

	tsderp "tailscale.com/derp"
	tshttp "tailscale.com/derp/derphttp"
	"tailscale.com/net/netmon"
	tskey "tailscale.com/types/key"
)

// Their derphttp client against our Handler over plain HTTP: two clients
// connect, and a packet from one reaches the other with the right source.
func TestTheirHTTPClientOurHandler(t *testing.T) {
	s := ourderp.NewServer(ourkey.NewNode(), t.Logf)
	defer s.Close()
	srv := httptest.NewServer(ourhttp.Handler(s))
	defer srv.Close()
	url := srv.URL + "/derp"

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mk := func() *tshttp.Client {
		c, err := tshttp.NewClient(tskey.NewNode(), url, t.Logf, netmon.NewStatic())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Connect(ctx); err != nil {
			t.Fatalf("connect: %v", err)
		}
		return c
	}
	a, b := mk(), mk()
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
