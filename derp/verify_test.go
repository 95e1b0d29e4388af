package derp

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openderp/openderp/key"
)

// connects reports whether a client can complete a connection: it gets
// ServerInfo rather than EOF.
func connects(t *testing.T, ts *testServer, opts ...ClientOpt) bool {
	t.Helper()
	return connectsAs(t, ts, key.NewNode(), opts...)
}

// connectsAs is connects with the client key priv.
func connectsAs(t *testing.T, ts *testServer, priv key.NodePrivate, opts ...ClientOpt) bool {
	t.Helper()
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c, err := NewClient(priv, nc, bufioRW(nc), t.Logf, opts...)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	m, err := c.Recv()
	if err != nil {
		return false
	}
	if _, ok := m.(ServerInfoMessage); !ok {
		t.Fatalf("got %T", m)
	}
	return true
}

func TestAdmissionController(t *testing.T) {
	var verdict string
	var gotReq struct {
		NodePublic key.NodePublic
		Source     string
	}
	ctl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			t.Errorf("method %s", r.Method)
		}
		json.NewDecoder(r.Body).Decode(&gotReq)
		switch verdict {
		case "500":
			http.Error(w, "boom", 500)
		default:
			w.Write([]byte(verdict))
		}
	}))
	defer ctl.Close()

	ts := newTestServer(t)
	ts.s.SetVerifyClientURL(ctl.URL)
	ts.s.SetMeshKey(testMeshKey)
	tests := []struct {
		verdict  string
		failOpen bool
		want     bool
	}{
		{`{"Allow":true}`, false, true},
		{`{"Allow":false}`, true, false},
		{`garbage`, true, false},
		{"500", true, false},
	}
	for _, tt := range tests {
		verdict = tt.verdict
		ts.s.SetVerifyClientURLFailOpen(tt.failOpen)
		if got := connects(t, ts); got != tt.want {
			t.Errorf("verdict %s: connected = %v, want %v", tt.verdict, got, tt.want)
		}
	}
	if gotReq.Source != "127.0.0.1" || gotReq.NodePublic.IsZero() {
		t.Errorf("controller saw %+v", gotReq)
	}
	// Mesh peers skip the controller.
	verdict = `{"Allow":false}`
	if !connects(t, ts, MeshKey(testMeshKey)) {
		t.Error("mesh peer rejected")
	}
	// An unreachable controller: fail-open decides.
	ctl.Close()
	ts.s.SetVerifyClientURLFailOpen(true)
	if !connects(t, ts) {
		t.Error("fail-open did not admit")
	}
	ts.s.SetVerifyClientURLFailOpen(false)
	if connects(t, ts) {
		t.Error("fail-closed admitted")
	}
}

// fakeTailscaled serves the two LocalAPI calls the server makes.
func fakeTailscaled(t *testing.T, known map[key.NodePublic]bool, self key.NodePublic) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "ts.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Skipf("unix sockets unavailable: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/localapi/v0/whois":
			var k key.NodePublic
			if err := k.UnmarshalText([]byte(r.URL.Query().Get("addr"))); err != nil {
				http.Error(w, "bad addr", http.StatusBadRequest)
				return
			}
			if !known[k] {
				http.Error(w, "peer not found", http.StatusNotFound)
				return
			}
			w.Write([]byte(`{}`))
		case "/localapi/v0/status":
			json.NewEncoder(w).Encode(map[string]any{"Self": map[string]any{"PublicKey": self}})
		default:
			http.NotFound(w, r)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

// Like the real one, the fake tailscaled's whois does not know its own
// node key (tailscale#16099); the server admits it by asking for the
// daemon's status.
func TestVerifyClientWithTailscaled(t *testing.T) {
	allowed, self := key.NewNode(), key.NewNode()
	sock := fakeTailscaled(t, map[key.NodePublic]bool{allowed.Public(): true}, self.Public())
	ts := newTestServer(t)
	ts.s.SetVerifyClient(true)
	ts.s.SetTailscaledSocket(sock)

	if !connectsAs(t, ts, allowed) {
		t.Error("known node rejected")
	}
	if !connectsAs(t, ts, self) {
		t.Error("the local tailscaled's own key rejected")
	}
	if connects(t, ts) {
		t.Error("unknown node admitted")
	}
	if err := ts.s.ConsistencyCheck(); err != nil {
		t.Fatalf("consistency: %v", err)
	}
}

func TestVerifyClientNoTailscaled(t *testing.T) {
	ts := newTestServer(t)
	ts.s.SetVerifyClient(true)
	ts.s.SetTailscaledSocket(filepath.Join(t.TempDir(), "absent.sock"))
	if connects(t, ts) {
		t.Fatal("admitted without tailscaled")
	}
	err := ts.s.ConsistencyCheck()
	if err == nil || !strings.Contains(err.Error(), "no tailscaled answering") {
		t.Fatalf("ConsistencyCheck = %v, want a clear tailscaled error", err)
	}
}
