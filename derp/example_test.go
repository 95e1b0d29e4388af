package derp_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derp/derptest"
	"github.com/openderp/openderp/key"
)

// A relay on a loopback listener and two clients exchanging a packet
// through it.
func Example() {
	srv := derp.NewServer(key.NewNode(), nil)
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			brw := bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc))
			go srv.Accept(context.Background(), nc, brw, nc.RemoteAddr().String())
		}
	}()

	connect := func() *derp.Client {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			log.Fatal(err)
		}
		brw := bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc))
		c, err := derp.NewClient(key.NewNode(), nc, brw, nil)
		if err != nil {
			log.Fatal(err)
		}
		return c
	}
	alice, bob := connect(), connect()
	defer alice.Close()
	defer bob.Close()

	// Bob's first message, ServerInfo, means the server has registered
	// him; only then can packets reach him.
	if m, err := bob.Recv(); err != nil {
		log.Fatal(err)
	} else if _, ok := m.(derp.ServerInfoMessage); ok {
		fmt.Println("connected")
	}
	if err := alice.Send(bob.PublicKey(), []byte("hello, bob")); err != nil {
		log.Fatal(err)
	}
	for {
		m, err := bob.Recv()
		if err != nil {
			log.Fatal(err)
		}
		if p, ok := m.(derp.ReceivedPacket); ok {
			fmt.Printf("%s (from alice: %v)\n", p.Data, p.Source == alice.PublicKey())
			return
		}
	}
	// Output:
	// connected
	// hello, bob (from alice: true)
}

// Clients connected with the region's mesh key may watch the server's
// connections.
func ExampleClient_WatchConnectionChanges() {
	const meshKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	srv := derp.NewServer(key.NewNode(), nil)
	srv.SetMeshKey(meshKey)
	defer srv.Close()

	cc, sc := derptest.Pipe() // buffered, unlike net.Pipe, so both ends may write first
	go srv.Accept(context.Background(), sc, bufio.NewReadWriter(bufio.NewReader(sc), bufio.NewWriter(sc)), "192.0.2.1:1234")
	watcher, err := derp.NewClient(key.NewNode(), cc, bufio.NewReadWriter(bufio.NewReader(cc), bufio.NewWriter(cc)), nil, derp.MeshKey(meshKey))
	if err != nil {
		log.Fatal(err)
	}
	defer watcher.Close()
	if err := watcher.WatchConnectionChanges(); err != nil {
		log.Fatal(err)
	}
	for {
		m, err := watcher.Recv()
		if err != nil {
			log.Fatal(err)
		}
		if p, ok := m.(derp.PeerPresentMessage); ok {
			fmt.Println(p.IPPort, p.Flags == derp.PeerPresentIsMeshPeer)
			return
		}
	}
	// Output: 192.0.2.1:1234 true
}

// A graceful restart: the client hears when to come back, the relay keeps
// relaying for a grace period, then closes.
func ExampleServer_Shutdown() {
	srv := derp.NewServer(key.NewNode(), nil)
	cc, sc := derptest.Pipe()
	go srv.Accept(context.Background(), sc, bufio.NewReadWriter(bufio.NewReader(sc), bufio.NewWriter(sc)), "192.0.2.1:1234")
	c, err := derp.NewClient(key.NewNode(), cc, bufio.NewReadWriter(bufio.NewReader(cc), bufio.NewWriter(cc)), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Recv(); err != nil { // ServerInfo: registered
		log.Fatal(err)
	}

	grace, endGrace := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(grace, 5*time.Second, 10*time.Second) }()
	for {
		m, err := c.Recv()
		if err != nil {
			log.Fatal(err)
		}
		if r, ok := m.(derp.ServerRestartingMessage); ok {
			fmt.Println("reconnect in", r.ReconnectIn, "and try for", r.TryFor)
			break
		}
	}
	endGrace() // usually context.WithTimeout(ctx, grace period)
	fmt.Println("shutdown:", <-done)
	// Output:
	// reconnect in 5s and try for 10s
	// shutdown: <nil>
}
