// Command derpload puts a DERP server under relay load and reports what
// it delivers, for operators sizing a relay.
//
// It connects pairs of clients to the server, each sender writing packets
// of a fixed size to its own receiver, either windowed (a bounded number
// in flight per pair), at a fixed rate, or flat out; a separate probe
// pair bounces one packet at a time through the server to time round
// trips under that load. At the end it prints delivered packets per
// second and MB/s, the fraction of packets the server dropped, and round
// trip percentiles.
//
// Usage:
//
//	derpload [flags] URL
//
// URL is the server's DERP endpoint, http://host:port/derp or
// https://host/derp. HTTPS servers are verified against the system roots
// unless -pin gives the SHA-256 of the leaf certificate:
//
//	derpload -pairs 8 -size 1280 -window 32 -duration 10s http://127.0.0.1:3340/derp
//	derpload -pairs 64 -size 100 -duration 30s -json https://derp.example.net/derp
//	derpload -pin sha256-raw:3b1f...c0 https://192.0.2.1:443/derp
//
// On a terminal a progress line is redrawn every second. -json prints one
// JSON object instead of text, for scripts. Every run is bounded: at most
// 10,000 pairs, an hour of sending and, with -max-packets, a packet count;
// an interrupt (Ctrl-C) ends sending early and still reports.
//
// A sending client counts as many connections as any other: load from
// one machine measures that machine's client side too, so compare servers
// with the same client machine and settings.
//
// The probe runs in the same process as the load. For round trips that
// reflect the server under heavy load, run the load with
// -rtt-interval=-1ns and, at the same time, a second derpload with
// -pairs 0 that only probes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/openderp/openderp/internal/relayload"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// setupGrace is how long connecting and draining may add to -duration
// before the whole run is abandoned.
const setupGrace = 2 * time.Minute

// run is the whole command; it returns the exit code: 0 on success, 1 if
// the run failed, 2 for bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("derpload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		pairs    = fs.Int("pairs", 8, "sender/receiver client pairs")
		size     = fs.Int("size", 1280, "packet payload size in bytes")
		window   = fs.Int("window", 32, "packets in flight per pair; 0 for none (rate-limited or flat out)")
		rate     = fs.Float64("rate", 0, "packets per second per sender; 0 for no limit")
		duration = fs.Duration("duration", 10*time.Second, "how long to send")
		maxPkts  = fs.Int64("max-packets", 0, "stop after sending this many packets in total; 0 for no limit")
		pin      = fs.String("pin", "", "accept only the HTTPS server whose leaf certificate has this hash: sha256-raw:<hex>")
		rttEvery = fs.Duration("rtt-interval", 10*time.Millisecond, "pause between round-trip probes; negative to turn the probe off")
		asJSON   = fs.Bool("json", false, "print the result as one JSON object")
	)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: derpload [flags] URL\n\nURL is a DERP endpoint such as http://127.0.0.1:3340/derp.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	cfg := relayload.Config{
		URL: fs.Arg(0), Pairs: *pairs, Size: *size, Window: *window, Rate: *rate,
		Duration: *duration, MaxPackets: *maxPkts, RTTInterval: *rttEvery,
	}
	if err := cfg.Check(); err != nil {
		fmt.Fprintf(stderr, "derpload: %v\n", err)
		return 2
	}
	if *pin != "" {
		tc, err := relayload.PinnedTLSConfig(*pin)
		if err != nil {
			fmt.Fprintf(stderr, "derpload: %v\n", err)
			return 2
		}
		cfg.TLSConfig = tc
	}
	if !*asJSON && isTerminal(stdout) {
		cfg.Progress = func(p relayload.Progress) { printProgress(stdout, p) }
	}
	ctx, cancel := context.WithTimeout(ctx, *duration+setupGrace)
	defer cancel()

	res, err := relayload.Run(ctx, cfg)
	if cfg.Progress != nil {
		clearProgress(stdout)
	}
	if *asJSON {
		printJSON(stdout, res, err)
	} else if res != nil {
		printText(stdout, res)
	}
	if err != nil {
		fmt.Fprintf(stderr, "derpload: %v\n", err)
		return 1
	}
	return 0
}
