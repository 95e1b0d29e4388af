// Command stunc sends one STUN binding request and prints the public
// address the server saw it come from.
//
// Usage:
//
//	stunc <hostname> [port]
//
// The port defaults to 3478. On success stunc prints, to standard error,
//
//	sent addr: <server ip:port>
//	from addr: <ip:port the reply came from>
//	stun addr: <your address as the server saw it>
//
// and exits 0. A missing, malformed or mismatched reply is an error, and
// so is no reply within 5 seconds; stunc then prints the error and exits 1.
package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// replyTimeout bounds the wait for the server's answer.
// See docs/compat.md#stunc-timeout.
const replyTimeout = 5 * time.Second

func main() {
	log.SetFlags(0)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Stderr, replyTimeout)
	stop()
	if err != nil {
		log.Fatal(err)
	}
}
