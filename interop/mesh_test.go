package interop

import (
	"context"
	"sync"
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

// Our server and theirs meshed with the same key, each following the
// other with its own implementation's mesh client: packets cross in both
// directions.
func TestMeshOursWithTheirs(t *testing.T) {
	ours := ourderp.NewServer(ourkey.NewNode(), t.Logf)
	ours.SetMeshKey(meshKey)
	defer ours.Close()
	theirs := tsderp.NewServer(tskey.NewNode(), t.Logf)
	theirs.SetMeshKey(meshKey)
	defer theirs.Close()
	ourURL := httpServer(t, ourhttp.Handler(ours), nil)
	theirURL := httpServer(t, tshttp.Handler(theirs), nil)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()

	// Our server follows theirs through our mesh client.
	ourMesh, err := ourhttp.NewClient(ours.PrivateKey(), theirURL, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	ourMesh.MeshKey = meshKey
	defer ourMesh.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		ourMesh.RunWatchConnectionLoop(ctx, ours.PublicKey(), t.Logf,
			func(m ourderp.PeerPresentMessage) { ours.AddPacketForwarder(m.Key, ourMesh) },
			func(m ourderp.PeerGoneMessage) { ours.RemovePacketForwarder(m.Peer, ourMesh) })
	}()

	// Their server follows ours through their mesh client.
	theirMesh, err := tshttp.NewClient(theirs.PrivateKey(), ourURL, t.Logf, netmon.NewStatic())
	if err != nil {
		t.Fatal(err)
	}
	theirMesh.MeshKey = meshKey
	defer theirMesh.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		theirMesh.RunWatchConnectionLoop(ctx, theirs.PublicKey(), t.Logf,
			func(m tsderp.PeerPresentMessage) { theirs.AddPacketForwarder(m.Key, theirMesh) },
			func(m tsderp.PeerGoneMessage) { theirs.RemovePacketForwarder(m.Peer, theirMesh) })
	}()

	// x is on our server, y on theirs.
	x, err := ourhttp.NewClient(ourkey.NewNode(), ourURL, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	y, err := tshttp.NewClient(tskey.NewNode(), theirURL, t.Logf, netmon.NewStatic())
	if err != nil {
		t.Fatal(err)
	}
	defer y.Close()
	if err := x.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := y.Connect(ctx); err != nil {
		t.Fatal(err)
	}

	xGot := make(chan string, 16)
	yGot := make(chan string, 16)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			m, err := x.Recv()
			if err != nil {
				return
			}
			if p, ok := m.(ourderp.ReceivedPacket); ok && raw(tsPub(p.Source.Raw32())) == raw(y.SelfPublicKey()) {
				xGot <- string(p.Data)
			}
		}
	}()
	go func() {
		defer wg.Done()
		for {
			m, err := y.Recv()
			if err != nil {
				return
			}
			if p, ok := m.(tsderp.ReceivedPacket); ok && raw(p.Source) == x.SelfPublicKey().Raw32() {
				yGot <- string(p.Data)
			}
		}
	}()
	defer x.Close()
	defer y.Close()

	// The watch loops take a moment to learn of x and y; resend until the
	// packet gets through, for at most ten seconds.
	deliver := func(send func() error, got chan string, what string) {
		t.Helper()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(10 * time.Second)
		for {
			if err := send(); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			select {
			case <-got:
				return
			case <-tick.C:
			case <-deadline:
				t.Fatalf("%s: never delivered", what)
			}
		}
	}
	deliver(func() error {
		return x.Send(ourkey.NodePublicFromRaw32(raw(y.SelfPublicKey())), []byte("ours→theirs"))
	}, yGot, "our server to theirs")
	deliver(func() error { return y.Send(tsPub(x.SelfPublicKey().Raw32()), []byte("theirs→ours")) }, xGot, "their server to ours")
	x.Close()
	y.Close()
}
