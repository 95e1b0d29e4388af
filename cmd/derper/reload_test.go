package main

import (
	"context"
	"os"
	"syscall"
	"testing"
)

// TestReloadHub runs every registered reload, in order, once per signal,
// and stops with its context.
func TestReloadHub(t *testing.T) {
	var h reloadHub
	calls := make(chan string, 10)
	h.add("a", func() { calls <- "a" })
	h.add("b", func() { calls <- "b" })
	ctx, cancel := context.WithCancel(t.Context())
	sig := make(chan os.Signal)
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.run(ctx, sig, t.Logf)
	}()
	for range 2 {
		sig <- syscall.SIGHUP
		for _, want := range []string{"a", "b"} {
			if got := <-calls; got != want {
				t.Fatalf("reload %q, want %q", got, want)
			}
		}
	}
	cancel()
	<-done
	if len(calls) != 0 {
		t.Errorf("%d extra reloads", len(calls))
	}
}

// TestReloadHubEmpty: with nothing registered, start catches nothing, so
// SIGHUP keeps its default action (ending the process; see
// TestE2ENoRateConfig).
func TestReloadHubEmpty(t *testing.T) {
	var h reloadHub
	h.start(t.Context(), t.Logf) // must not start a goroutine; leakcheck would notice
}
