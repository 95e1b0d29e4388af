// Command devrelay runs a derp.Server on a loopback TCP port, speaking raw
// DERP frames without HTTP. It is what "make run" starts until cmd/derper
// exists; derp.NewClient over a plain TCP connection can relay through it.
package main

import (
	"bufio"
	"context"
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/key"
)

func main() {
	addr := flag.String("a", "127.0.0.1:3340", "loopback address to listen on")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	srv := derp.NewServer(key.NewNode(), log.Printf)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("devrelay: %v", err)
	}
	log.Printf("devrelay: raw DERP on %s, server key %v", ln.Addr(), srv.PublicKey())
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		nc, err := ln.Accept()
		if err != nil {
			break
		}
		brw := bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc))
		go srv.Accept(ctx, nc, brw, nc.RemoteAddr().String())
	}
	srv.Close()
	log.Printf("devrelay: stopped")
}
