package derp

import (
	"bufio"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/openderp/openderp/derp/derptest"
	"github.com/openderp/openderp/key"
)

// fakeServer is the server end of a pipe with a client that completed its
// handshake against it.
type fakeServer struct {
	priv key.NodePrivate
	nc   net.Conn
	brw  *bufio.ReadWriter
	c    *Client
	cpub key.NodePublic
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	cc, sc := derptest.Pipe()
	t.Cleanup(func() { cc.Close(); sc.Close() })
	fs := &fakeServer{priv: key.NewNode(), nc: sc, brw: bufioRW(sc)}
	WriteFrame(fs.brw.Writer, FrameServerKey, appendServerKey(nil, fs.priv.Public()))
	fs.brw.Flush()
	c, err := NewClient(key.NewNode(), cc, bufioRW(cc), t.Logf, MeshKey("mk"), IsProber(true))
	if err != nil {
		t.Fatal(err)
	}
	fs.c, fs.cpub = c, c.PublicKey()
	typ, p, err := ReadFrame(fs.brw.Reader, maxClientInfoLen, nil)
	if err != nil || typ != FrameClientInfo {
		t.Fatalf("client info: %v %v", typ, err)
	}
	pub, sealed, _ := parseClientInfo(p)
	js, ok := fs.priv.OpenFrom(pub, sealed)
	if !ok {
		t.Fatal("cannot open client info")
	}
	if string(js) != `{"meshKey":"mk","version":2,"CanAckPings":false,"IsProber":true}` {
		t.Fatalf("client info JSON %s", js)
	}
	return fs
}

func (fs *fakeServer) send(t *testing.T, typ FrameType, p []byte) {
	t.Helper()
	if err := WriteFrame(fs.brw.Writer, typ, p); err != nil {
		t.Fatal(err)
	}
	if err := fs.brw.Flush(); err != nil {
		t.Fatal(err)
	}
}

func (fs *fakeServer) sendInfo(t *testing.T, info serverInfo) {
	js, _ := json.Marshal(info)
	sealed, _ := fs.priv.SealTo(fs.cpub, js)
	fs.send(t, FrameServerInfo, sealed)
}

func TestClientDecodesFrames(t *testing.T) {
	fs := newFakeServer(t)
	peer := key.NewNode().Public()
	ipp := netip.MustParseAddrPort("198.51.100.7:41641")
	tests := []struct {
		typ  FrameType
		p    []byte
		want ReceivedMessage // nil: skipped
	}{
		{FrameServerKey, appendServerKey(nil, peer), nil},
		{FrameKeepAlive, nil, KeepAliveMessage{}},
		{FrameRecvPacket, make([]byte, 31), nil},
		{FramePeerGone, appendPeerGone(nil, peer, PeerGoneReasonNotHere), PeerGoneMessage{peer, PeerGoneReasonNotHere}},
		{FramePeerGone, peer.AppendTo(nil), PeerGoneMessage{Peer: peer}},
		{FramePeerGone, make([]byte, 5), nil},
		{FramePeerPresent, appendPeerPresent(nil, peer, ipp, PeerPresentIsProber, "app"), PeerPresentMessage{peer, ipp, PeerPresentIsProber, "app"}},
		{FramePeerPresent, peer.AppendTo(nil), PeerPresentMessage{Key: peer}},
		{FramePeerPresent, nil, nil},
		{FramePing, []byte("12345678extra"), PingMessage([8]byte([]byte("12345678")))},
		{FramePing, []byte("1234567"), nil},
		{FramePong, []byte("abcdefgh"), PongMessage([8]byte([]byte("abcdefgh")))},
		{FramePong, nil, nil},
		{FrameHealth, []byte("bad"), HealthMessage{Problem: "bad"}},
		{FrameHealth, nil, HealthMessage{}},
		{FrameRestarting, appendRestarting(nil, 2*time.Second, time.Minute), ServerRestartingMessage{2 * time.Second, time.Minute}},
		{FrameRestarting, []byte{1}, nil},
		{FrameType(0x0b), []byte("unknown"), nil},
	}
	for _, tt := range tests {
		fs.send(t, tt.typ, tt.p)
		if tt.want == nil {
			continue
		}
		fs.c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := fs.c.Recv()
		if err != nil {
			t.Fatalf("%v: %v", tt.typ, err)
		}
		if got != tt.want {
			t.Fatalf("%v %x: got %#v, want %#v", tt.typ, tt.p, got, tt.want)
		}
	}
	// A packet, into a caller-provided struct.
	fs.send(t, FrameRecvPacket, append(peer.AppendTo(nil), "data"...))
	var p ReceivedPacket
	m, err := fs.c.RecvInto(&p)
	if err != nil || m != &p || p.Source != peer || string(p.Data) != "data" {
		t.Fatalf("RecvInto = %v, %v, %+v", m, err, p)
	}
}

func TestClientTokenBucket(t *testing.T) {
	fs := newFakeServer(t)
	fs.sendInfo(t, serverInfo{Version: 2, TokenBucketBytesPerSecond: 1, TokenBucketBytesBurst: 100})
	m, err := fs.c.Recv()
	if err != nil || m != (ServerInfoMessage{1, 100}) {
		t.Fatalf("got %#v, %v", m, err)
	}
	dst := key.NewNode().Public()
	// 5+32+50 = 87 bytes fit the burst; the next packet is dropped silently.
	for range 2 {
		if err := fs.c.Send(dst, make([]byte, 50)); err != nil {
			t.Fatal(err)
		}
	}
	fs.c.SendPing([8]byte{7})
	typ, p, err := ReadFrame(fs.brw.Reader, 1<<16, nil)
	if err != nil || typ != FrameSendPacket || len(p) != 82 {
		t.Fatalf("first frame %v (%d bytes), %v", typ, len(p), err)
	}
	if typ, _, _ := ReadFrame(fs.brw.Reader, 1<<16, nil); typ != FramePing {
		t.Fatalf("second frame %v, want Ping: the over-limit packet was sent", typ)
	}
	// A zero rate removes the limiter.
	fs.sendInfo(t, serverInfo{Version: 2})
	if _, err := fs.c.Recv(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		fs.c.Send(dst, make([]byte, 50))
	}
	for range 3 {
		if typ, _, _ := ReadFrame(fs.brw.Reader, 1<<16, nil); typ != FrameSendPacket {
			t.Fatalf("got %v", typ)
		}
	}
}

func TestClientBadServerInfo(t *testing.T) {
	for _, p := range [][]byte{make([]byte, 10), make([]byte, 60)} {
		fs := newFakeServer(t)
		fs.send(t, FrameServerInfo, p)
		if _, err := fs.c.Recv(); err == nil {
			t.Fatalf("bad ServerInfo of %d bytes accepted", len(p))
		}
	}
	fs := newFakeServer(t)
	sealed, _ := fs.priv.SealTo(fs.cpub, []byte("not json"))
	fs.send(t, FrameServerInfo, sealed)
	if _, err := fs.c.Recv(); err == nil {
		t.Fatal("ServerInfo with bad JSON accepted")
	}
	fs = newFakeServer(t)
	fs.brw.Write([]byte{byte(FrameRecvPacket), 0x10, 0, 0, 1})
	fs.brw.Flush()
	var tooLarge *FrameTooLargeError
	if _, err := fs.c.Recv(); !errors.As(err, &tooLarge) {
		t.Fatalf("oversize frame: %v", err)
	}
}

func TestClientClose(t *testing.T) {
	fs := newFakeServer(t)
	if _, err := fs.c.LocalAddr(); err == nil {
		t.Log("pipe address parsed") // pipe addresses are not ip:port
	}
	fs.c.Close()
	if _, err := fs.c.Recv(); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("Recv after Close: %v", err)
	}
	if err := fs.c.Send(key.NewNode().Public(), nil); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
}

func TestClientWriteErrorSticks(t *testing.T) {
	fs := newFakeServer(t)
	fs.nc.Close()
	dst := key.NewNode().Public()
	err1 := fs.c.Send(dst, make([]byte, 10000))
	err2 := fs.c.NotePreferred(true)
	if err1 == nil || err1 != err2 {
		t.Fatalf("errors %v, %v: want the same sticky error", err1, err2)
	}
}

func TestClientLocalAddr(t *testing.T) {
	ts := newTestServer(t)
	c := ts.dial(t)
	ap, err := c.LocalAddr()
	if err != nil || !ap.Addr().IsLoopback() {
		t.Fatalf("LocalAddr = %v, %v", ap, err)
	}
}
