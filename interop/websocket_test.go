package interop

import (
	"context"
	"testing"

	ourderp "github.com/openderp/openderp/derp"
	ourhttp "github.com/openderp/openderp/derphttp"
	ourkey "github.com/openderp/openderp/key"
	tsderp "tailscale.com/derp"
	tshttp "tailscale.com/derp/derphttp"
	"tailscale.com/net/netmon"
	tskey "tailscale.com/types/key"
)

// Their derphttp client over WebSocket (the "derp" subprotocol) against
// our WebSocket handler, talking to our client over plain HTTP. The
// reference's server-side WebSocket support lives in its derper binary,
// not in a library, so the reverse direction has no reference peer.
func TestTheirWebSocketClientOurHandler(t *testing.T) {
	t.Setenv("TS_DEBUG_DERP_WS_CLIENT", "true")
	s := ourderp.NewServer(ourkey.NewNode(), t.Logf)
	defer s.Close()
	url := httpServer(t, ourhttp.WebSocketHandler(s, ourhttp.Handler(s)), nil)
	before := ourhttp.WebSocketAccepts()

	their, err := tshttp.NewClient(tskey.NewNode(), url, t.Logf, netmon.NewStatic())
	if err != nil {
		t.Fatal(err)
	}
	defer their.Close()
	if err := their.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitRegistered(t, their)
	if ourhttp.WebSocketAccepts() != before+1 {
		t.Fatal("their client did not come in over WebSocket")
	}

	ours, err := ourhttp.NewClient(ourkey.NewNode(), url, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	if err := ours.Send(ourkey.NodePublicFromRaw32(raw(their.SelfPublicKey())), []byte("over websocket")); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := their.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := m.(tsderp.ReceivedPacket); ok {
			if string(p.Data) != "over websocket" || raw(p.Source) != ours.SelfPublicKey().Raw32() {
				t.Fatalf("got %q from %v", p.Data, p.Source)
			}
			break
		}
	}
	if err := their.Send(tsPub(ours.SelfPublicKey().Raw32()), []byte("back")); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := ours.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := m.(ourderp.ReceivedPacket); ok {
			if string(p.Data) != "back" {
				t.Fatalf("got %q", p.Data)
			}
			break
		}
	}
}
