package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/openderp/openderp/derp"
)

// Graceful restart (openderp only, -shutdown-grace): on SIGTERM or SIGINT
// derper reports unhealthy on /healthz, closes its listeners, tells every
// client with a Restarting frame when to come back, relays for the grace
// period, writes out what is queued and exits 0. Without the flag it
// closes everything at once, as the reference does.
// See docs/operating.md#upgrading-and-restarting and
// docs/compat.md#derper-graceful-restart.

// restartTryFor is how long the Restarting frame asks clients to keep
// trying to reconnect: long enough for a process manager to restart the
// binary.
const restartTryFor = 10 * time.Second

// connContext returns the context DERP connections and mesh clients run
// under. Without a grace period it is ctx, which ends at the signal, as in
// the reference; with one it outlives ctx until cancel, so that
// connections survive into the grace period.
func connContext(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	if grace <= 0 {
		return ctx, func() {}
	}
	return context.WithCancel(context.WithoutCancel(ctx))
}

// shutdown stops serving after the signal. closeListeners stops accepting
// connections; it does not touch hijacked DERP connections. With a grace
// period, /healthz turns unhealthy first and s is shut down gracefully: a
// Restarting frame advises clients to reconnect once the grace period is
// over, and relaying goes on until then, or until a second signal. Without
// one, s is left to the caller's Close.
func shutdown(s *derp.Server, hl *health, grace time.Duration, closeListeners func(), logf func(string, ...any)) {
	if grace <= 0 {
		closeListeners()
		return
	}
	hl.SetHealthy(false)
	closeListeners()
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	go func() {
		select {
		case <-again:
			logf("derper: second signal; ending the grace period")
			cancel()
		case <-ctx.Done():
		}
	}()
	logf("derper: shutting down: relaying for up to %v; clients told to reconnect in %v and keep trying for %v", grace, grace, restartTryFor)
	s.Shutdown(ctx, grace, restartTryFor)
	logf("derper: shut down")
}
