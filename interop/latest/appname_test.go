package latest

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	ourderp "github.com/openderp/openderp/derp"
	ourhttp "github.com/openderp/openderp/derphttp"
	ourkey "github.com/openderp/openderp/key"

	tsderp "tailscale.com/derp"
	tshttp "tailscale.com/derp/derphttp"
	"tailscale.com/net/netmon"
	tskey "tailscale.com/types/key"
)

const meshKeyHex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

// Their client (v1.102) declares an AppName and presents the typed mesh
// key: our server shows the name in PeerPresent and on the snapshot
// page, refuses a disallowed name, and their watcher parses our longer
// PeerPresent frames (flags plus app name) without trouble.
func TestTheirAppNameAndMeshKeyOnOurServer(t *testing.T) {
	s := ourderp.NewServer(ourkey.NewNode(), t.Logf)
	defer s.Close()
	s.SetMeshKey(strings.ToUpper(meshKeyHex)) // either case matches
	s.SetDisallowedAppNames([]string{"banned"})
	srv := httptest.NewServer(ourhttp.Handler(s))
	defer srv.Close()
	url := srv.URL + "/derp"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mk := func(app string, mesh bool) *tshttp.Client {
		c, err := tshttp.NewClient(tskey.NewNode(), url, t.Logf, netmon.NewStatic())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.AppName = app
		if mesh {
			k, err := tskey.ParseDERPMesh(meshKeyHex)
			if err != nil {
				t.Fatal(err)
			}
			c.MeshKey = k
			c.WatchConnectionChanges = true
		}
		if err := c.Connect(ctx); err != nil {
			t.Fatalf("connect: %v", err)
		}
		return c
	}

	w := mk("", true)
	// Their watcher first hears about itself, as a mesh peer.
	recvUntil(t, w, func(m tsderp.ReceivedMessage) bool {
		p, ok := m.(tsderp.PeerPresentMessage)
		if ok && (p.Key != w.SelfPublicKey() || p.Flags != tsderp.PeerPresentIsMeshPeer) {
			t.Fatalf("own PeerPresent %+v", p)
		}
		return ok
	})

	a := mk("their app", false)
	recvUntil(t, a, func(m tsderp.ReceivedMessage) bool { _, ok := m.(tsderp.ServerInfoMessage); return ok })
	recvUntil(t, w, func(m tsderp.ReceivedMessage) bool {
		p, ok := m.(tsderp.PeerPresentMessage)
		if ok && (p.Key != a.SelfPublicKey() || p.Flags != tsderp.PeerPresentIsRegular) {
			t.Fatalf("PeerPresent %+v", p)
		}
		return ok
	})
	found := false
	for _, cs := range s.ConnSnapshots() {
		if cs.Key.String() == a.SelfPublicKey().String() {
			found = cs.AppName == "their app" && !cs.MeshPeer
		}
		if cs.Key.String() == w.SelfPublicKey().String() && !cs.MeshPeer {
			t.Error("their typed mesh key did not make a mesh peer")
		}
	}
	if !found {
		t.Errorf("snapshot lacks their AppName: %+v", s.ConnSnapshots())
	}

	// Our watcher sees the name in the new PeerPresent form.
	ow, err := ourhttp.NewClient(ourkey.NewNode(), url, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer ow.Close()
	ow.MeshKey = meshKeyHex
	ow.WatchConnectionChanges = true
	if err := ow.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		m, err := ow.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := m.(ourderp.PeerPresentMessage); ok && p.AppName == "their app" {
			break
		}
	}

	// A disallowed name: the server closes the connection before
	// ServerInfo.
	b, err := tshttp.NewClient(tskey.NewNode(), url, t.Logf, netmon.NewStatic())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.AppName = "banned"
	err = b.Connect(ctx)
	if err == nil {
		_, err = b.Recv()
	}
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("banned app admitted: %v", err)
	}
}
