package derphttp_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"
	"net"
	"net/http"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/derpmap"
	"github.com/openderp/openderp/key"
)

// A minimal relay: /derp (with WebSocket), the probe endpoints and the
// captive-portal check, served over plain HTTP on a loopback port.
func ExampleHandler() {
	s := derp.NewServer(key.NewNode(), log.Printf)
	defer s.Close()

	mux := http.NewServeMux()
	mux.Handle("/derp", derphttp.WebSocketHandler(s, derphttp.Handler(s)))
	mux.HandleFunc("/derp/probe", derphttp.ProbeHandler)
	mux.HandleFunc("/derp/latency-check", derphttp.ProbeHandler)
	mux.HandleFunc("/generate_204", derphttp.ServeNoContent)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	defer hs.Close()

	c, err := derphttp.NewClient(key.NewNode(), "http://"+ln.Addr().String()+"/derp", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.ServerPublicKey() == s.PublicKey())
	// Output: true
}

// An HTTPS relay hands out its meta certificate with every chain, so TLS
// 1.3 clients skip the 101 round trip.
func ExampleGetCertificateWithMetaCert() {
	s := derp.NewServer(key.NewNode(), nil)
	defer s.Close()
	var cert tls.Certificate // loaded from disk or ACME in a real daemon
	cfg := &tls.Config{
		GetCertificate: derphttp.GetCertificateWithMetaCert(
			func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil },
			s.MetaCert()),
	}
	c, _ := cfg.GetCertificate(&tls.ClientHelloInfo{})
	fmt.Println(len(c.Certificate))
	// Output: 1
}

// Send a packet to a peer through whichever node of a region answers.
func ExampleNewRegionClient() {
	dm := &derpmap.Map{Regions: map[int]*derpmap.Region{
		900: {RegionID: 900, RegionCode: "home", Nodes: []*derpmap.Node{
			{Name: "900a", RegionID: 900, HostName: "derp.example.net", DERPPort: 8443},
		}},
	}}
	c := derphttp.NewRegionClient(key.NewNode(), log.Printf, func() *derpmap.Region {
		return dm.Regions[900] // re-read on every connect
	})
	defer c.Close()
	c.NotePreferred(true) // sent on every connection
	fmt.Println(c)
	// Output: derphttp.Client{region 900 (home)}
}
