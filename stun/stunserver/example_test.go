package stunserver_test

import (
	"context"
	"expvar"
	"fmt"
	"log"
	"os/signal"
	"syscall"

	"github.com/openderp/openderp/stun"
	"github.com/openderp/openderp/stun/stunserver"
)

// Serve STUN on the default port until interrupted, publishing the
// counters the way cmd/derper does.
func ExampleServer_ListenAndServe() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	s := stunserver.New(log.Printf)
	expvar.Publish(stunserver.ExpvarName, s.ExpVar())
	if err := s.ListenAndServe(ctx, fmt.Sprintf(":%d", stun.DefaultPort)); err != nil {
		log.Fatal(err)
	}
}
