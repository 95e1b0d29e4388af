// Command stunc sends one STUN binding request and prints the public
// address the server saw it come from.
//
// Usage:
//
//	stunc [-timeout D] <hostname> [port]
//
// The port defaults to 3478. On success stunc prints, to standard error,
//
//	sent addr: <server ip:port>
//	from addr: <ip:port the reply came from>
//	stun addr: <your address as the server saw it>
//
// and exits 0. A missing, malformed or mismatched reply is an error, and
// so is no reply within the -timeout (default 3s, which must be positive);
// stunc then prints the error and exits 1.
package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	log.SetFlags(0)
	args, timeout, err := parseCommandLine(os.Args, os.Stderr)
	if err != nil {
		os.Exit(1) // parseCommandLine has printed the problem and usage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err = run(ctx, args, os.Stderr, timeout)
	stop()
	if err != nil {
		log.Fatal(err)
	}
}
