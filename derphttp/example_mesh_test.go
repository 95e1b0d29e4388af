package derphttp_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/key"
)

// Two relays of one region, meshed: each follows the other's clients
// with RunWatchConnectionLoop and registers the mesh connection as their
// forwarder, so a client of one relay reaches a client of the other. This
// is what derper's -mesh-with does.
func ExampleClient_RunWatchConnectionLoop() {
	const meshKey = "3f1c2b9e8d7a60514f3e2d1c0b9a8776655443322110ffeeddccbbaa99887766"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// serve runs a relay with the mesh key on a loopback port.
	serve := func() (*derp.Server, string) {
		s := derp.NewServer(key.NewNode(), nil)
		s.SetMeshKey(meshKey)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		hs := &http.Server{Handler: derphttp.Handler(s)}
		go hs.Serve(ln)
		context.AfterFunc(ctx, func() { hs.Close(); s.Close() })
		return s, "http://" + ln.Addr().String() + "/derp"
	}
	relayA, urlA := serve()
	_, urlB := serve()

	// A follows B's clients. (B would follow A's the same way.)
	learned := make(chan key.NodePublic, 8)
	mesh, err := derphttp.NewClient(relayA.PrivateKey(), urlB, nil)
	if err != nil {
		log.Fatal(err)
	}
	mesh.MeshKey = meshKey
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		mesh.RunWatchConnectionLoop(ctx, relayA.PublicKey(), nil,
			func(m derp.PeerPresentMessage) {
				relayA.AddPacketForwarder(m.Key, mesh)
				select {
				case learned <- m.Key:
				default:
				}
			},
			func(m derp.PeerGoneMessage) { relayA.RemovePacketForwarder(m.Peer, mesh) })
	}()

	connect := func(url string) *derphttp.Client {
		c, err := derphttp.NewClient(key.NewNode(), url, nil)
		if err != nil {
			log.Fatal(err)
		}
		if err := c.Connect(ctx); err != nil {
			log.Fatal(err)
		}
		return c
	}
	bob := connect(urlB)
	defer bob.Close()
	for k := range learned { // wait until A knows Bob is on B
		if k == bob.SelfPublicKey() {
			break
		}
	}
	alice := connect(urlA)
	defer alice.Close()
	if err := alice.Send(bob.SelfPublicKey(), []byte("hello across the mesh")); err != nil {
		log.Fatal(err)
	}
	for {
		m, err := bob.Recv()
		if err != nil {
			log.Fatal(err)
		}
		if p, ok := m.(derp.ReceivedPacket); ok {
			fmt.Printf("%s (from alice: %v)\n", p.Data, p.Source == alice.SelfPublicKey())
			break
		}
	}
	cancel()
	<-loopDone
	mesh.Close()
	// Output: hello across the mesh (from alice: true)
}
