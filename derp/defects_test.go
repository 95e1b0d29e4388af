package derp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/openderp/openderp/derp/derptest"
	"github.com/openderp/openderp/key"
)

// Regression tests for the small defects of issue 13 (item 5).

// TestFrameHandlingUsesParsers checks that the read loop accepts and
// refuses SendPacket and ForwardPacket payload lengths exactly as the
// parse functions the fuzzers exercise, with the same error.
func TestFrameHandlingUsesParsers(t *testing.T) {
	s := NewServer(key.NewNode(), nil)
	defer s.Close()
	lengths := []int{0, 1, KeyLen - 1, KeyLen, KeyLen + 1, 2*KeyLen - 1, 2 * KeyLen, 2*KeyLen + 1,
		KeyLen + MaxPacketSize, KeyLen + MaxPacketSize + 1, 2*KeyLen + MaxPacketSize, 2*KeyLen + MaxPacketSize + 1}
	for _, ft := range []FrameType{FrameSendPacket, FrameForwardPacket} {
		for _, n := range lengths {
			payload := make([]byte, n)
			var perr error
			if ft == FrameSendPacket {
				_, _, perr = parseSendPacket(payload)
			} else {
				_, _, _, perr = parseForwardPacket(payload)
			}
			c := &sclient{s: s, canMesh: true, br: bufio.NewReaderSize(bytes.NewReader(payload), MinReaderSize)}
			herr := c.handleFrame(ft, uint32(n))
			if (perr == nil) != (herr == nil) || (perr != nil && perr.Error() != herr.Error()) {
				t.Errorf("%v, %d bytes: handler %v, parser %v", ft, n, herr, perr)
			}
			if herr == nil && c.br.Buffered() != 0 {
				t.Errorf("%v, %d bytes: %d bytes left unread", ft, n, c.br.Buffered())
			}
		}
	}
}

// TestAcceptSmallReader checks that Accept works with a reader smaller
// than the two keys it peeks at in a ForwardPacket frame.
func TestAcceptSmallReader(t *testing.T) {
	s := NewServer(key.NewNode(), nil)
	s.SetMeshKey(testMeshKey)
	defer s.Close()
	dst := pipeClient(t, s)
	cc, sc := derptest.Pipe()
	go s.Accept(context.Background(), sc, bufio.NewReadWriter(bufio.NewReaderSize(sc, 16), bufio.NewWriter(sc)), "127.0.0.1:2")
	mesh, err := NewClient(key.NewNode(), cc, bufioRW(cc), nil, MeshKey(testMeshKey))
	if err != nil {
		t.Fatal(err)
	}
	defer mesh.Close()
	src := key.NewNode().Public()
	if err := mesh.ForwardPacket(src, dst.PublicKey(), []byte("via a 16-byte reader")); err != nil {
		t.Fatal(err)
	}
	if p := recvPacket(t, dst); p.Source != src || string(p.Data) != "via a 16-byte reader" {
		t.Fatalf("got %v %q", p.Source, p.Data)
	}
}

// TestClientsRemoteNeverNegative reads gauge_clients_remote while clients
// come and go; read from two lock acquisitions it could go below zero.
func TestClientsRemoteNeverNegative(t *testing.T) {
	s := NewServer(key.NewNode(), nil)
	defer s.Close()
	remote := s.vars.Get("gauge_clients_remote")
	stop := make(chan struct{})
	negative := make(chan string, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if v := remote.String(); strings.HasPrefix(v, "-") {
				select {
				case negative <- v:
				default:
				}
			}
			runtime.Gosched()
		}
	}()
	for range 60 {
		pipeClient(t, s).Close()
	}
	close(stop)
	wg.Wait()
	select {
	case v := <-negative:
		t.Fatalf("gauge_clients_remote = %s", v)
	default:
	}
}

// TestTCPRTTClassifiedAtStart checks that a connection that is not TCP
// counts tcp_rtt{le="non-tcp"} as soon as it is registered, not at the
// first sample 10 s later (so short connections were never counted).
func TestTCPRTTClassifiedAtStart(t *testing.T) {
	if !rttSupported {
		t.Skip("RTTs are sampled on Linux only")
	}
	s := NewServer(key.NewNode(), nil)
	defer s.Close()
	pipeClient(t, s)
	if got := s.metrics.tcpRTT.Get("non-tcp").String(); got != "1" {
		t.Fatalf("non-tcp = %s right after the handshake, want 1", got)
	}
	ts := newTestServer(t)
	ts.dial(t)
	if got := ts.s.metrics.tcpRTT.Get("non-tcp").String(); got != "0" {
		t.Fatalf("TCP connection counted non-tcp = %s", got)
	}
	if got := ts.s.metrics.tcpRTT.Get("error").String(); got != "0" {
		t.Fatalf("TCP connection counted error = %s", got)
	}
}

func TestEnvBool(t *testing.T) {
	for v, want := range map[string]bool{"": false, "0": false, "false": false, "FALSE": false, "no": false,
		"1": true, "true": true, "T": true} {
		t.Setenv("OPENDERP_TEST_BOOL", v)
		if got := envBool("OPENDERP_TEST_BOOL"); got != want {
			t.Errorf("envBool(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestMultiForwarderNotCalledDirectly(t *testing.T) {
	m := &multiForwarder{ranks: map[PacketForwarder]int{}}
	if err := m.ForwardPacket(key.NodePublic{}, key.NodePublic{}, nil); !errors.Is(err, errMultiForwarder) {
		t.Fatalf("ForwardPacket = %v", err)
	}
}

// FuzzFrameHandlingMatchesParsers feeds arbitrary SendPacket and
// ForwardPacket payloads to both the read loop's handler and the parse
// functions: they must agree on acceptance and error, and the handler must
// consume exactly the payload.
func FuzzFrameHandlingMatchesParsers(f *testing.F) {
	f.Add(true, make([]byte, KeyLen+3))
	f.Add(false, make([]byte, 2*KeyLen-1))
	s := NewServer(key.NewNode(), nil)
	f.Fuzz(func(t *testing.T, forward bool, payload []byte) {
		ft := FrameSendPacket
		var perr error
		if forward {
			ft = FrameForwardPacket
			_, _, _, perr = parseForwardPacket(payload)
		} else {
			_, _, perr = parseSendPacket(payload)
		}
		trailer := []byte{0xde, 0xad}
		c := &sclient{s: s, canMesh: true, br: bufio.NewReaderSize(bytes.NewReader(append(payload, trailer...)), MinReaderSize)}
		herr := c.handleFrame(ft, uint32(len(payload)))
		if (perr == nil) != (herr == nil) || (perr != nil && perr.Error() != herr.Error()) {
			t.Fatalf("handler %v, parser %v", herr, perr)
		}
		if herr == nil {
			rest, _ := io.ReadAll(c.br)
			if !bytes.Equal(rest, trailer) {
				t.Fatalf("after the frame: %x, want %x", rest, trailer)
			}
		}
	})
}
