package derp

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/openderp/openderp/key"
)

// allowList is an AdmitFunc admitting the keys in the map.
func allowList(keys ...key.NodePrivate) AdmitFunc {
	m := map[key.NodePublic]bool{}
	for _, k := range keys {
		m[k.Public()] = true
	}
	return func(_ context.Context, k key.NodePublic, _ netip.AddrPort) error {
		if !m[k] {
			return errors.New("not on the list")
		}
		return nil
	}
}

// TestAdmissionCombined checks the combining rule: every enabled check
// must admit; mesh peers skip them all; the local tailscaled's own key
// passes the tailscaled check.
func TestAdmissionCombined(t *testing.T) {
	inTailnet, onList, inBoth, self, stranger := key.NewNode(), key.NewNode(), key.NewNode(), key.NewNode(), key.NewNode()
	sock := fakeTailscaled(t, map[key.NodePublic]bool{inTailnet.Public(): true, inBoth.Public(): true}, self.Public())
	ctlAllows := map[key.NodePublic]bool{inTailnet.Public(): true, inBoth.Public(): true, self.Public(): true, onList.Public(): true}
	ctl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ NodePublic key.NodePublic }
		json.NewDecoder(r.Body).Decode(&req)
		json.NewEncoder(w).Encode(map[string]bool{"Allow": ctlAllows[req.NodePublic]})
	}))
	defer ctl.Close()

	type checks struct {
		tailscaled, url bool
		lists           [][]key.NodePrivate
	}
	list := []key.NodePrivate{onList, inBoth}
	all := []key.NodePrivate{inTailnet, onList, inBoth, self}
	tests := []struct {
		name   string
		checks checks
		client key.NodePrivate
		mesh   bool
		want   bool
	}{
		{"no checks admit anyone", checks{}, stranger, false, true},
		{"list admits listed", checks{lists: [][]key.NodePrivate{list}}, onList, false, true},
		{"list refuses others", checks{lists: [][]key.NodePrivate{list}}, inTailnet, false, false},
		{"tailscaled and list: in both", checks{tailscaled: true, lists: [][]key.NodePrivate{list}}, inBoth, false, true},
		{"tailscaled and list: tailnet only", checks{tailscaled: true, lists: [][]key.NodePrivate{list}}, inTailnet, false, false},
		{"tailscaled and list: list only", checks{tailscaled: true, lists: [][]key.NodePrivate{list}}, onList, false, false},
		{"tailscaled admits its own key", checks{tailscaled: true}, self, false, true},
		{"own key still needs the list", checks{tailscaled: true, lists: [][]key.NodePrivate{list}}, self, false, false},
		{"own key on the list", checks{tailscaled: true, lists: [][]key.NodePrivate{all}}, self, false, true},
		{"url and list: both allow", checks{url: true, lists: [][]key.NodePrivate{list}}, onList, false, true},
		{"two lists: on one only", checks{lists: [][]key.NodePrivate{list, {inTailnet}}}, onList, false, false},
		{"everything: in all", checks{tailscaled: true, url: true, lists: [][]key.NodePrivate{all, list}}, inBoth, false, true},
		{"mesh peer skips everything", checks{tailscaled: true, url: true, lists: [][]key.NodePrivate{{}}}, stranger, true, true},
		{"stranger refused by everything", checks{tailscaled: true, url: true, lists: [][]key.NodePrivate{all}}, stranger, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t)
			ts.s.SetMeshKey(testMeshKey)
			ts.s.SetTailscaledSocket(sock)
			ts.s.SetVerifyClient(tt.checks.tailscaled)
			if tt.checks.url {
				ts.s.SetVerifyClientURL(ctl.URL)
			}
			for _, l := range tt.checks.lists {
				ts.s.AddAdmitFunc(allowList(l...))
			}
			var opts []ClientOpt
			if tt.mesh {
				opts = append(opts, MeshKey(testMeshKey))
			}
			if got := connectsAs(t, ts, tt.client, opts...); got != tt.want {
				t.Errorf("admitted = %v, want %v", got, tt.want)
			}
		})
	}
}

// An AdmitFunc sees the client's key and address, and its error becomes
// the rejection reason.
func TestAdmitFuncArguments(t *testing.T) {
	ts := newTestServer(t)
	c := key.NewNode()
	type call struct {
		k   key.NodePublic
		src netip.AddrPort
	}
	calls := make(chan call, 1)
	ts.s.AddAdmitFunc(func(ctx context.Context, k key.NodePublic, src netip.AddrPort) error {
		calls <- call{k, src}
		return errors.New("closed for maintenance")
	})
	var rej *RejectedError
	err := ts.s.verifyClient(context.Background(), c.Public(), &clientInfo{}, "[::ffff:127.0.0.1]:5555")
	if !errors.As(err, &rej) || !strings.Contains(rej.Reason, "closed for maintenance") {
		t.Fatalf("verifyClient = %v, want a RejectedError with the AdmitFunc's reason", err)
	}
	got := <-calls
	if got.k != c.Public() || got.src != netip.MustParseAddrPort("127.0.0.1:5555") {
		t.Errorf("AdmitFunc got %v, %v", got.k, got.src)
	}
	if connectsAs(t, ts, c) {
		t.Error("refused client connected")
	}
}

// The consistency check warns when another check would lock out the
// local tailscaled, whose key -verify-clients itself admits.
func TestConsistencyCheckSelfKeyRefused(t *testing.T) {
	self := key.NewNode()
	sock := fakeTailscaled(t, nil, self.Public())
	ts := newTestServer(t)
	ts.s.SetVerifyClient(true)
	ts.s.SetTailscaledSocket(sock)
	if err := ts.s.ConsistencyCheck(); err != nil {
		t.Fatalf("with -verify-clients alone: %v", err)
	}
	ts.s.AddAdmitFunc(allowList())
	err := ts.s.ConsistencyCheck()
	if err == nil || !strings.Contains(err.Error(), "own node key would not be admitted: client "+self.Public().String()+" rejected: not on the list") {
		t.Fatalf("ConsistencyCheck = %v", err)
	}
}

// Strangers refused by -verify-clients cost at most one status call per
// selfKeyRefetch; the local tailscaled's key is still admitted.
func TestSelfKeyCache(t *testing.T) {
	self := key.NewNode()
	sock := fakeTailscaled(t, nil, self.Public())
	ts := newTestServer(t)
	ctx := context.Background()
	var first time.Time
	for i := range 5 {
		if ts.s.isSelfKey(ctx, sock, key.NewNode().Public()) {
			t.Fatal("stranger taken for the local tailscaled")
		}
		if i == 0 {
			first = ts.s.selfKey.fetched
		}
		if first.IsZero() || ts.s.selfKey.fetched != first {
			t.Fatalf("stranger %d: status asked again or never (fetched %v, first %v)", i, ts.s.selfKey.fetched, first)
		}
	}
	if !ts.s.isSelfKey(ctx, sock, self.Public()) || ts.s.selfKey.fetched != first {
		t.Fatal("own key not admitted from the cache")
	}
	// Once the cache is old, a stranger makes it ask again.
	ts.s.selfKey.fetched = first.Add(-selfKeyRefetch)
	ts.s.isSelfKey(ctx, sock, key.NewNode().Public())
	if !ts.s.selfKey.fetched.After(first.Add(-selfKeyRefetch)) {
		t.Error("old cache not refreshed")
	}
	// Another socket is another tailscaled.
	other := key.NewNode()
	if !ts.s.isSelfKey(ctx, fakeTailscaled(t, nil, other.Public()), other.Public()) {
		t.Error("key of another socket's tailscaled refused")
	}
}
