package derp

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/openderp/openderp/derp/derptest"
	"github.com/openderp/openderp/key"
)

// pipeServer runs s.Accept on one end of an in-memory pipe and returns the
// other end and a channel closed when Accept returns.
func pipeServer(t testing.TB, s *Server) (net.Conn, *bufio.ReadWriter, <-chan struct{}) {
	t.Helper()
	cc, sc := derptest.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Accept(context.Background(), sc, bufio.NewReadWriter(bufio.NewReader(sc), bufio.NewWriter(sc)), "192.0.2.1:4242")
	}()
	t.Cleanup(func() {
		cc.Close()
		<-done
	})
	return cc, bufio.NewReadWriter(bufio.NewReader(cc), bufio.NewWriter(cc)), done
}

func waitDone(t testing.TB, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Accept did not return")
	}
}

// sealedInfo returns a ClientInfo payload for priv sealed to srv.
func sealedInfo(t testing.TB, priv key.NodePrivate, srv key.NodePublic, info any) []byte {
	t.Helper()
	js, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := priv.SealTo(srv, js)
	if err != nil {
		t.Fatal(err)
	}
	return appendClientInfo(nil, priv.Public(), sealed)
}

func TestHandshakeRejects(t *testing.T) {
	srvPriv := key.NewNode()
	srvPub := srvPriv.Public()
	cli := key.NewNode()
	other := key.NewNode()
	frame := func(t FrameType, p []byte) []byte {
		b := []byte{byte(t), 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[1:], uint32(len(p)))
		return append(b, p...)
	}
	tests := []struct {
		name  string
		bytes func(t *testing.T) []byte
	}{
		{"wrong frame type", func(t *testing.T) []byte { return frame(FrameSendPacket, make([]byte, 100)) }},
		{"short client info", func(t *testing.T) []byte { return frame(FrameClientInfo, make([]byte, 55)) }},
		{"long client info", func(t *testing.T) []byte {
			return []byte{byte(FrameClientInfo), 0, 0x04, 0, 1} // 256 KiB + 1
		}},
		{"zero client key", func(t *testing.T) []byte { return frame(FrameClientInfo, make([]byte, 100)) }},
		{"sealed to wrong server", func(t *testing.T) []byte {
			return frame(FrameClientInfo, sealedInfo(t, cli, other.Public(), clientInfo{Version: 2}))
		}},
		{"undecryptable box", func(t *testing.T) []byte {
			p := sealedInfo(t, cli, srvPub, clientInfo{Version: 2})
			p[len(p)-1] ^= 1
			return frame(FrameClientInfo, p)
		}},
		{"not JSON", func(t *testing.T) []byte {
			sealed, _ := cli.SealTo(srvPub, []byte("{nope"))
			return frame(FrameClientInfo, appendClientInfo(nil, cli.Public(), sealed))
		}},
		{"truncated", func(t *testing.T) []byte {
			return frame(FrameClientInfo, sealedInfo(t, cli, srvPub, clientInfo{Version: 2}))[:60]
		}},
		{"truncated header", func(t *testing.T) []byte { return []byte{byte(FrameClientInfo), 0} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer(srvPriv, t.Logf)
			defer s.Close()
			cc, brw, done := pipeServer(t, s)
			if _, err := NewClientKeyOnly(brw); err != nil {
				t.Fatal(err)
			}
			cc.Write(tt.bytes(t))
			if tt.name == "truncated" || tt.name == "truncated header" {
				cc.Close()
			}
			waitDone(t, done)
			// The server sent nothing after its key.
			cc.SetReadDeadline(time.Now().Add(time.Second))
			if b, err := io.ReadAll(brw); len(b) != 0 {
				t.Fatalf("server sent %d bytes after rejecting (%v)", len(b), err)
			}
			if n := s.metrics.curConns.Value(); n != 0 {
				t.Fatalf("%d connections registered", n)
			}
		})
	}
}

// NewClientKeyOnly reads the server greeting like a client would.
func NewClientKeyOnly(brw *bufio.ReadWriter) (key.NodePublic, error) {
	t, p, err := ReadFrame(brw.Reader, maxServerKeyLen, nil)
	if err != nil {
		return key.NodePublic{}, err
	}
	if t != FrameServerKey {
		return key.NodePublic{}, ErrUnexpectedFrame
	}
	return parseServerKey(p)
}

func TestClientHandshakeErrors(t *testing.T) {
	tests := []struct {
		name  string
		greet []byte
		want  error
	}{
		{"bad magic", append([]byte{1, 0, 0, 0, 40}, make([]byte, 40)...), ErrBadMagic},
		{"wrong type", append([]byte{3, 0, 0, 0, 40}, make([]byte, 40)...), ErrUnexpectedFrame},
		{"too long", []byte{1, 0, 0, 4, 1}, nil},
		{"zero key", append(append([]byte{1, 0, 0, 0, 40}, Magic...), make([]byte, 32)...), ErrZeroKey},
		{"eof", nil, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc, sc := derptest.Pipe()
			defer cc.Close()
			sc.Write(tt.greet)
			sc.Close()
			_, err := NewClient(key.NewNode(), cc, bufio.NewReadWriter(bufio.NewReader(cc), bufio.NewWriter(cc)), t.Logf)
			if err == nil {
				t.Fatal("NewClient succeeded")
			}
			var tooLarge *FrameTooLargeError
			if tt.want == nil && !errors.As(err, &tooLarge) {
				t.Fatalf("err = %v, want FrameTooLargeError", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := NewClient(key.NodePrivate{}, nil, nil, nil); !errors.Is(err, ErrZeroKey) {
		t.Fatalf("zero private key: %v", err)
	}
}

func TestFastStartSkipsServerKey(t *testing.T) {
	s := NewServer(key.NewNode(), t.Logf)
	defer s.Close()
	cc, brw, _ := pipeServer(t, s)
	c, err := NewClient(key.NewNode(), cc, brw, t.Logf, ServerPublicKey(s.PublicKey()), CanAckPings(true))
	if err != nil {
		t.Fatal(err)
	}
	cc.SetReadDeadline(time.Now().Add(10 * time.Second))
	m, err := c.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.(ServerInfoMessage); !ok {
		t.Fatalf("first message %T, want ServerInfoMessage (ServerKey must be skipped)", m)
	}
}

func TestServerInfoJSON(t *testing.T) {
	s := NewServer(key.NewNode(), t.Logf)
	defer s.Close()
	cc, brw, _ := pipeServer(t, s)
	priv := key.NewNode()
	if _, err := NewClientKeyOnly(brw); err != nil {
		t.Fatal(err)
	}
	p := sealedInfo(t, priv, s.PublicKey(), clientInfo{Version: 2, CanAckPings: true})
	WriteFrame(brw.Writer, FrameClientInfo, p)
	brw.Flush()
	cc.SetReadDeadline(time.Now().Add(10 * time.Second))
	typ, payload, err := ReadFrame(brw.Reader, 1<<10, nil)
	if err != nil || typ != FrameServerInfo {
		t.Fatalf("got %v, %v", typ, err)
	}
	if len(payload) != 53 {
		t.Fatalf("ServerInfo payload is %d bytes, want 53", len(payload))
	}
	js, ok := priv.OpenFrom(s.PublicKey(), payload)
	if !ok || string(js) != `{"version":2}` {
		t.Fatalf("ServerInfo JSON %q, %v", js, ok)
	}
}
