package derp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/netip"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derp/derptest"
	"github.com/openderp/openderp/key"
)

// A custom admission controller: the relay asks it about every client
// (POST {"NodePublic": ..., "Source": ...}) and admits only those it
// answers {"Allow": true} for. This one admits a fixed set of keys; a real
// one would ask a database or a control server. derper's
// -verify-client-url does the same.
func ExampleServer_SetVerifyClientURL() {
	alice, mallory := key.NewNode(), key.NewNode()
	allowed := map[key.NodePublic]bool{alice.Public(): true}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	controller := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			NodePublic key.NodePublic
			Source     string
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(map[string]bool{"Allow": allowed[req.NodePublic]})
	})}
	go controller.Serve(ln)
	defer controller.Close()

	srv := derp.NewServer(key.NewNode(), nil)
	defer srv.Close()
	srv.SetVerifyClientURL("http://" + ln.Addr().String() + "/admit")
	srv.SetVerifyClientURLFailOpen(false) // an unreachable controller admits no one

	// try connects priv over an in-memory pipe and reports whether the
	// relay admitted it: admitted clients receive ServerInfo, refused ones
	// see the connection closed.
	try := func(priv key.NodePrivate) bool {
		cc, sc := derptest.Pipe()
		go srv.Accept(context.Background(), sc, bufio.NewReadWriter(bufio.NewReader(sc), bufio.NewWriter(sc)), "198.51.100.7:41641")
		c, err := derp.NewClient(priv, cc, bufio.NewReadWriter(bufio.NewReader(cc), bufio.NewWriter(cc)), nil)
		if err != nil {
			return false
		}
		defer c.Close()
		m, err := c.Recv()
		_, ok := m.(derp.ServerInfoMessage)
		return err == nil && ok
	}
	fmt.Println("alice admitted:", try(alice))
	fmt.Println("mallory admitted:", try(mallory))
	// Output:
	// alice admitted: true
	// mallory admitted: false
}

// An admission check in Go: this relay admits only the keys on its own
// list, and mesh peers, which skip every check. derper's
// -verify-clients-file and Tailscale API admission are AdmitFuncs too.
func ExampleServer_AddAdmitFunc() {
	alice, mallory := key.NewNode(), key.NewNode()
	allowed := map[key.NodePublic]bool{alice.Public(): true}

	srv := derp.NewServer(key.NewNode(), nil)
	defer srv.Close()
	srv.AddAdmitFunc(func(ctx context.Context, k key.NodePublic, src netip.AddrPort) error {
		if !allowed[k] {
			return errors.New("not on the list")
		}
		return nil
	})

	// try connects priv over an in-memory pipe and reports whether the
	// relay admitted it.
	try := func(priv key.NodePrivate) bool {
		cc, sc := derptest.Pipe()
		go srv.Accept(context.Background(), sc, bufio.NewReadWriter(bufio.NewReader(sc), bufio.NewWriter(sc)), "198.51.100.7:41641")
		c, err := derp.NewClient(priv, cc, bufio.NewReadWriter(bufio.NewReader(cc), bufio.NewWriter(cc)), nil)
		if err != nil {
			return false
		}
		defer c.Close()
		m, err := c.Recv()
		_, ok := m.(derp.ServerInfoMessage)
		return err == nil && ok
	}
	fmt.Println("alice admitted:", try(alice))
	fmt.Println("mallory admitted:", try(mallory))
	// Output:
	// alice admitted: true
	// mallory admitted: false
}
