package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/key"
)

// TestE2ESocket: with -verify-clients and -socket, derper asks the
// tailscaled LocalAPI on that socket about each client, admitting only
// the node key it knows.
func TestE2ESocket(t *testing.T) {
	known := key.NewNode()
	sock := filepath.Join(t.TempDir(), "tailscaled.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	asked := make(chan string, 10)
	api := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/localapi/v0/whois" {
			http.NotFound(w, r)
			return
		}
		addr := r.URL.Query().Get("addr")
		select {
		case asked <- addr:
		default:
		}
		if addr == known.Public().String() {
			fmt.Fprint(w, "{}")
			return
		}
		http.Error(w, "peer not found", http.StatusNotFound)
	})}
	go api.Serve(ln)
	defer api.Close()

	port := freePort(t, "tcp")
	d := startDerper(t, nil, "-a", fmt.Sprintf("127.0.0.1:%d", port), "-c", filepath.Join(t.TempDir(), "c.json"), "-stun=false",
		"-verify-clients", "-socket", sock)
	url := fmt.Sprintf("http://127.0.0.1:%d/derp", port)
	connect := func(k key.NodePrivate) error {
		c, err := derphttp.NewClient(k, url, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if err := c.Connect(ctx); err != nil {
			return err
		}
		_, err = c.Recv() // ServerInfo only after admission
		return err
	}
	if err := connect(known); err != nil {
		t.Errorf("known key refused: %v", err)
	}
	if <-asked != known.Public().String() {
		t.Error("LocalAPI not asked about the known key")
	}
	if err := connect(key.NewNode()); err == nil {
		t.Error("unknown key admitted")
	}
	if !strings.HasPrefix(<-asked, "nodekey:") {
		t.Error("LocalAPI not asked about the unknown key")
	}
	d.stop(t)
}
