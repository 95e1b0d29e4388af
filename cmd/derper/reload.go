package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// reloadHub runs every registered reload on SIGHUP, so features that
// reload (-rate-config, manual certificates) share one signal handler.
// With nothing registered it never catches SIGHUP, which then ends the
// process as it does for the reference derper.
type reloadHub struct {
	reloads []namedReload // appended before start, read only afterwards
}

type namedReload struct {
	name string
	fn   func()
}

// add registers fn, which must log its own outcome, to run on SIGHUP.
// Call it before start.
func (h *reloadHub) add(name string, fn func()) {
	h.reloads = append(h.reloads, namedReload{name, fn})
}

// start catches SIGHUP until ctx ends, if anything was registered.
func (h *reloadHub) start(ctx context.Context, logf func(string, ...any)) {
	if len(h.reloads) == 0 {
		return
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		h.run(ctx, hup, logf)
	}()
}

// run calls every reload, in registration order, for each value on sig,
// until ctx ends.
func (h *reloadHub) run(ctx context.Context, sig <-chan os.Signal, logf func(string, ...any)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-sig:
		}
		logf("derper: SIGHUP: reloading %d item(s)", len(h.reloads))
		for _, r := range h.reloads {
			r.fn()
		}
	}
}
