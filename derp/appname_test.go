package derp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openderp/openderp/derp/derptest"
	"github.com/openderp/openderp/key"
)

func TestValidAppName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"", true},
		{"myapp", true},
		{"with space ~!", true},
		{strings.Repeat("a", 32), true},
		{strings.Repeat("a", 33), false},
		{"tab\t", false},
		{"del\x7f", false},
		{"é", false},
	}
	for _, tt := range tests {
		if got := ValidAppName(tt.name); got != tt.ok {
			t.Errorf("ValidAppName(%q) = %v; want %v", tt.name, got, tt.ok)
		}
	}
	long := strings.Repeat("x", 50)
	if got, want := (&InvalidAppNameError{Name: long}).Error(), `invalid AppName "`+long[:40]+`"`; got != want {
		t.Errorf("error = %s; want %s", got, want)
	}
}

// pipeAccept serves one in-memory connection with opts and returns the
// client end. The server side ends when the test does.
func pipeAccept(t *testing.T, s *Server, remote string, opts ConnOptions) net.Conn {
	t.Helper()
	cn, sn := derptest.Pipe()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.AcceptWithOptions(context.Background(), sn, bufioRW(sn), remote, opts)
	}()
	t.Cleanup(func() {
		cn.Close()
		sn.Close()
		wg.Wait()
	})
	return cn
}

// pipeClientOpts runs a Client over pipeAccept and waits for ServerInfo.
func pipeClientOpts(t *testing.T, s *Server, remote string, opts ConnOptions, copts ...ClientOpt) *Client {
	t.Helper()
	cn := pipeAccept(t, s, remote, opts)
	c, err := NewClient(key.NewNode(), cn, bufioRW(cn), t.Logf, copts...)
	if err != nil {
		t.Fatal(err)
	}
	if m := recvMsg(t, c); m != (ServerInfoMessage{}) {
		t.Fatalf("first message = %#v", m)
	}
	return c
}

// rawHandshake sends info as ClientInfo, bypassing the Client's own
// checks, and reports whether the server answered with ServerInfo.
func rawHandshake(t *testing.T, nc net.Conn, info clientInfo) bool {
	t.Helper()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(nc)
	ft, p, err := ReadFrame(br, maxServerKeyLen, nil)
	if err != nil || ft != FrameServerKey {
		t.Fatalf("server key: %v %v", ft, err)
	}
	srv, err := parseServerKey(p)
	if err != nil {
		t.Fatal(err)
	}
	priv := key.NewNode()
	js, _ := json.Marshal(info)
	sealed, err := priv.SealTo(srv, js)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(nc)
	WriteFrame(bw, FrameClientInfo, appendClientInfo(nil, priv.Public(), sealed))
	bw.Flush()
	ft, _, err = ReadFrame(br, 1<<16, nil)
	if err != nil {
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("reading reply: %v", err)
		}
		return false
	}
	return ft == FrameServerInfo
}

func TestAppNameAdmission(t *testing.T) {
	s := NewServer(key.NewNode(), t.Logf)
	defer s.Close()
	s.SetMeshKey(testMeshKey)
	s.SetDisallowedAppNames([]string{"blocked", "also blocked"})
	tests := []struct {
		name string
		info clientInfo
		ok   bool
	}{
		{"no name", clientInfo{Version: 2}, true},
		{"valid name", clientInfo{Version: 2, AppName: "myapp"}, true},
		{"longest", clientInfo{AppName: strings.Repeat("n", 32)}, true},
		{"too long", clientInfo{AppName: strings.Repeat("n", 33)}, false},
		{"control byte", clientInfo{AppName: "a\nb"}, false},
		{"disallowed", clientInfo{AppName: "blocked"}, false},
		{"disallowed with space", clientInfo{AppName: "also blocked"}, false},
		{"disallowed, mesh peer", clientInfo{AppName: "blocked", MeshKey: testMeshKey}, true},
		{"invalid, mesh peer", clientInfo{AppName: "a\x00", MeshKey: testMeshKey}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc := pipeAccept(t, s, "192.0.2.1:1000", ConnOptions{})
			if got := rawHandshake(t, nc, tt.info); got != tt.ok {
				t.Errorf("admitted = %v; want %v", got, tt.ok)
			}
		})
	}
}

func TestClientRefusesInvalidAppName(t *testing.T) {
	a, b := derptest.Pipe()
	defer a.Close()
	defer b.Close()
	_, err := NewClient(key.NewNode(), a, bufioRW(a), nil, AppName("bad\x01"), ServerPublicKey(key.NewNode().Public()))
	var ae *InvalidAppNameError
	if !errors.As(err, &ae) {
		t.Fatalf("NewClient = %v; want InvalidAppNameError", err)
	}
}

func TestPeerPresentAppNameAndNotIdeal(t *testing.T) {
	defer checkNoLeaks(t)
	s := NewServer(key.NewNode(), t.Logf)
	defer s.Close()
	s.SetMeshKey(testMeshKey)
	w := pipeClientOpts(t, s, "192.0.2.9:9", ConnOptions{}, MeshKey(testMeshKey))
	if err := w.WatchConnectionChanges(); err != nil {
		t.Fatal(err)
	}
	if m := recvMsg(t, w).(PeerPresentMessage); m.Flags != PeerPresentIsMeshPeer || m.AppName != "" {
		t.Fatalf("own PeerPresent = %+v", m)
	}
	gauge := func() int64 { return s.metrics.curNotIdealConns.Value() }

	tests := []struct {
		name     string
		opts     ConnOptions
		copts    []ClientOpt
		want     PeerPresentFlags
		wantApp  string
		notIdeal int64
	}{
		{"regular", ConnOptions{}, nil, PeerPresentIsRegular, "", 0},
		{"not ideal, named", ConnOptions{NotIdeal: true}, []ClientOpt{AppName("tool 1.0")}, PeerPresentNotIdeal, "tool 1.0", 1},
		{"prober with mesh key, not ideal", ConnOptions{NotIdeal: true}, []ClientOpt{IsProber(true), MeshKey(testMeshKey)}, 0x0e, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := pipeClientOpts(t, s, "192.0.2.2:2000", tt.opts, tt.copts...)
			m := recvMsg(t, w).(PeerPresentMessage)
			if m.Key != c.PublicKey() || m.Flags != tt.want || m.AppName != tt.wantApp {
				t.Errorf("PeerPresent = %+v; want flags %#x app %q", m, tt.want, tt.wantApp)
			}
			if got := gauge(); got != tt.notIdeal {
				t.Errorf("notideal gauge = %d; want %d", got, tt.notIdeal)
			}
			c.Close()
			if g, ok := recvMsg(t, w).(PeerGoneMessage); !ok || g.Peer != c.PublicKey() {
				t.Fatalf("want PeerGone for %v, got %#v", c.PublicKey(), g)
			}
			waitFor(t, "gauge back to 0", func() bool { return gauge() == 0 })
		})
	}
}

// The log line for an invalid name is the reference's.
func TestInvalidAppNameLogLine(t *testing.T) {
	lines := make(chan string, 10)
	s := NewServer(key.NewNode(), func(format string, args ...any) { lines <- fmt.Sprintf(format, args...) })
	defer s.Close()
	nc := pipeAccept(t, s, "192.0.2.30:30", ConnOptions{})
	if rawHandshake(t, nc, clientInfo{AppName: "a\nb"}) {
		t.Fatal("admitted")
	}
	want := `derp: 192.0.2.30:30: receive client key: invalid AppName "a\nb"`
	select {
	case l := <-lines:
		if l != want {
			t.Errorf("log %q; want %q", l, want)
		}
	default:
		t.Error("nothing logged before the connection closed")
	}
}

// FuzzAppNameInPeerPresent: a valid name survives the PeerPresent round
// trip; anything else is never delivered.
func FuzzAppNameInPeerPresent(f *testing.F) {
	f.Add("myapp")
	f.Add(strings.Repeat("z", 33))
	f.Add("a\x00b")
	k := key.NewNode().Public()
	f.Fuzz(func(t *testing.T, name string) {
		b := appendPeerPresent(nil, k, netip.AddrPort{}, PeerPresentIsRegular, name)
		m, err := parsePeerPresent(b)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case ValidAppName(name) && m.AppName != name:
			t.Fatalf("valid name %q came back as %q", name, m.AppName)
		case !ValidAppName(name) && m.AppName != "":
			t.Fatalf("invalid name %q delivered as %q", name, m.AppName)
		case m.Key != k || m.Flags != PeerPresentIsRegular:
			t.Fatalf("other fields changed: %+v", m)
		}
	})
}
