package derp

import (
	"bufio"
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/openderp/openderp/derp/derptest"
	"github.com/openderp/openderp/key"
)

// FuzzServerFrames feeds arbitrary frame streams to a server connection
// that completed its handshake, next to a well-behaved client. Whatever the
// stream, the server must not panic, must end or keep that one connection
// without blocking, and must still relay for the other client.
func FuzzServerFrames(f *testing.F) {
	frame := func(t FrameType, p []byte) []byte {
		b := []byte{byte(t), 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[1:], uint32(len(p)))
		return append(b, p...)
	}
	k := key.NewNode().Public().AppendTo(nil)
	f.Add(frame(FrameSendPacket, append(k, "hello"...)))
	f.Add(frame(FramePing, []byte("12345678")))
	f.Add(frame(FrameNotePreferred, []byte{1}))
	f.Add(frame(FrameWatchConns, nil))
	f.Add(frame(FrameClosePeer, k))
	f.Add(frame(FrameForwardPacket, append(append(k, k...), "x"...)))
	f.Add(frame(FrameType(0x30), []byte("unknown")))
	f.Add([]byte{byte(FrameSendPacket), 0xff, 0xff, 0xff, 0xff})
	f.Add(append(frame(FramePing, make([]byte, 1000)), frame(FramePing, make([]byte, 8))...))

	srvPriv := key.NewNode()
	f.Fuzz(func(t *testing.T, stream []byte) {
		s := NewServer(srvPriv, nil)
		s.SetMeshKey(testMeshKey)
		defer s.Close()
		good := pipeClient(t, s)
		bad := pipeClient(t, s, MeshKey(testMeshKey))
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			for {
				if _, err := bad.Recv(); err != nil {
					return
				}
			}
		}()
		bad.nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
		bad.nc.Write(stream)
		defer func() {
			bad.Close()
			<-drained
		}()
		// The good client can still talk to itself through the server.
		if err := good.Send(good.PublicKey(), []byte("still here")); err != nil {
			t.Fatal(err)
		}
		good.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			m, err := good.Recv()
			if err != nil {
				t.Fatalf("good client: %v", err)
			}
			if p, ok := m.(ReceivedPacket); ok && string(p.Data) == "still here" {
				break
			}
		}
	})
}

// pipeClient connects a client to s over an in-memory pipe and waits for
// its ServerInfo.
func pipeClient(t *testing.T, s *Server, opts ...ClientOpt) *Client {
	t.Helper()
	cc, sc := derptest.Pipe()
	go s.Accept(context.Background(), sc, bufio.NewReadWriter(bufio.NewReader(sc), bufio.NewWriter(sc)), "127.0.0.1:1")
	c, err := NewClient(key.NewNode(), cc, bufioRW(cc), nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	cc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if m, err := c.Recv(); err != nil {
		t.Fatal(err)
	} else if _, ok := m.(ServerInfoMessage); !ok {
		t.Fatalf("got %T", m)
	}
	cc.SetReadDeadline(time.Time{})
	t.Cleanup(func() { c.Close() })
	return c
}
