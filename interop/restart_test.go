package interop

import (
	"bufio"
	"context"
	"net"
	"testing"
	"time"

	ourderp "github.com/openderp/openderp/derp"
	ourkey "github.com/openderp/openderp/key"
	tsderp "tailscale.com/derp"
	tskey "tailscale.com/types/key"
)

// TestTheirClientSeesOurRestarting checks that the reference client
// parses the Restarting frame our Server.Shutdown sends, with the advised
// values, and keeps relaying through the grace period.
func TestTheirClientSeesOurRestarting(t *testing.T) {
	s := ourderp.NewServer(ourkey.NewNode(), t.Logf)
	t.Cleanup(func() { s.Close() })
	addr := serve(t, func(ctx context.Context, nc net.Conn, brw *bufio.ReadWriter, ra string) { s.Accept(ctx, nc, brw, ra) })
	type their struct {
		c    *tsderp.Client
		priv tskey.NodePrivate
		nc   net.Conn
	}
	dial := func() their {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		priv := tskey.NewNode()
		c, err := tsderp.NewClient(priv, nc, bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc)), t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		return their{c, priv, nc}
	}
	recv := func(p their) tsderp.ReceivedMessage {
		t.Helper()
		p.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		m, err := p.c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	a, b := dial(), dial()
	for _, p := range []their{a, b} {
		if _, ok := recv(p).(tsderp.ServerInfoMessage); !ok {
			t.Fatal("first message is not ServerInfo")
		}
	}

	ctx, endGrace := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx, 1500*time.Millisecond, 8*time.Second) }()
	want := tsderp.ServerRestartingMessage{ReconnectIn: 1500 * time.Millisecond, TryFor: 8 * time.Second}
	for _, p := range []their{a, b} {
		for {
			m := recv(p)
			if _, ok := m.(tsderp.KeepAliveMessage); ok {
				continue
			}
			if m != want {
				t.Fatalf("got %#v, want %#v", m, want)
			}
			break
		}
	}
	if err := a.c.Send(b.priv.Public(), []byte("in grace")); err != nil {
		t.Fatal(err)
	}
	for {
		if p, ok := recv(b).(tsderp.ReceivedPacket); ok {
			if string(p.Data) != "in grace" {
				t.Fatalf("got %q", p.Data)
			}
			break
		}
	}
	endGrace()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := b.c.Recv(); err == nil {
		t.Fatal("connection open after Shutdown")
	}
}
