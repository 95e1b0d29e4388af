package prober

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
)

// warmUpEvery is how often warmUp resends its marker.
const warmUpEvery = 100 * time.Millisecond

// warmUpMarker is the payload of warm-up packets; receivers skip it.
var warmUpMarker = []byte("openderp prober warm-up")

// isWarmUp reports whether a received packet is a warm-up packet.
func isWarmUp(data []byte) bool { return bytes.Equal(data, warmUpMarker) }

// warmUp sends a marker packet from fromc to toc every 100ms until toc
// receives one, and discards whatever else toc receives meanwhile. Between
// nodes, a packet sent before the sender's node has learnt through the
// mesh where the receiver is gets dropped; the reference waits a fixed
// 100ms and so fails probes of a slow mesh. Warming up waits exactly as
// long as the mesh needs, bounded by ctx. See docs/compat.md#prober-warm-up.
func warmUp(ctx context.Context, fromc, toc *derphttp.Client) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		fromc.Close()
		toc.Close()
	})
	defer stop()

	done := make(chan struct{})
	sendErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(warmUpEvery)
		defer t.Stop()
		dst := toc.SelfPublicKey()
		for {
			if err := fromc.Send(dst, warmUpMarker); err != nil {
				sendErr <- err
				return
			}
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	defer wg.Wait()
	defer close(done)

	src := fromc.SelfPublicKey()
	for {
		m, err := toc.Recv()
		if err != nil {
			// The deadline closes both clients, which fails the sender
			// too: report the deadline, not the closed client.
			if ctx.Err() != nil {
				return fmt.Errorf("timeout waiting for the path to carry packets: %w", ctx.Err())
			}
			select {
			case err := <-sendErr:
				return fmt.Errorf("warm-up: sending: %w", err)
			default:
			}
			return fmt.Errorf("warm-up: receiving: %w", err)
		}
		if p, ok := m.(derp.ReceivedPacket); ok && p.Source == src && isWarmUp(p.Data) {
			return nil
		}
	}
}
