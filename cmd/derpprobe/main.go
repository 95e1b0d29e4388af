// Command derpprobe watches a set of DERP relays: it reads a DERP map and
// keeps TLS, STUN, mesh, bandwidth and queuing-delay probes running
// against every node, serving a status page and Prometheus metrics over
// HTTP.
//
// With -once it runs every probe a single time, prints one "good:" or
// "bad:" line per probe (with -json, one JSON object per probe on
// standard output instead) and exits with status 1 if any probe failed.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"
)

func main() {
	cfg, err := parseFlags(flag.CommandLine, os.Args[1:])
	if err != nil {
		os.Exit(2)
	}
	if cfg.version {
		fmt.Println(longVersion())
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log.Default()); err != nil {
		log.Printf("derpprobe: %v", err)
		os.Exit(1)
	}
}

// config is everything the flags set.
type config struct {
	derpMap      string
	version      bool
	listen       string
	once         bool
	spread       bool
	interval     time.Duration
	meshInterval time.Duration
	stunInterval time.Duration
	tlsInterval  time.Duration
	bwInterval   time.Duration
	bwSize       int64
	bwTUNAddr    string
	qdRate       int
	qdTimeout    time.Duration
	regionCode   string
	dev          bool
	meshPSKFile  string
	secretsURL   string
	secretsPath  string
	secretsCache string
	jsonOut      bool

	testHooks // zero outside tests
}

func parseFlags(fs *flag.FlagSet, args []string) (config, error) {
	var c config
	fs.StringVar(&c.derpMap, "derp-map", "https://login.tailscale.com/derpmap/default", "DERP map: an https://, http:// or file:// URL, or \"local\" for the local tailscaled's map")
	fs.BoolVar(&c.version, "version", false, "print the version and exit")
	fs.StringVar(&c.listen, "listen", ":8030", "HTTP listen address (not used with -once)")
	fs.BoolVar(&c.once, "once", false, "run every probe once, print the results and exit (status 1 if any failed)")
	fs.BoolVar(&c.spread, "spread", true, "delay each probe's first run by a fraction of its interval")
	fs.DurationVar(&c.interval, "interval", 15*time.Second, "how often to re-read the DERP map")
	fs.DurationVar(&c.meshInterval, "mesh-interval", 15*time.Second, "mesh probe interval; 0 disables mesh probes")
	fs.DurationVar(&c.stunInterval, "stun-interval", 15*time.Second, "STUN probe interval; 0 disables STUN probes")
	fs.DurationVar(&c.tlsInterval, "tls-interval", 15*time.Second, "TLS probe interval; 0 disables TLS probes")
	fs.DurationVar(&c.bwInterval, "bw-interval", 0, "bandwidth probe interval; 0 disables bandwidth probes")
	fs.Int64Var(&c.bwSize, "bw-probe-size-bytes", 1_000_000, "bytes sent by each bandwidth probe")
	fs.StringVar(&c.bwTUNAddr, "bw-tun-ipv4-addr", "", "if set, bandwidth probes carry TCP over a TUN device (Linux) holding this address's /30; needs CAP_NET_ADMIN")
	fs.IntVar(&c.qdRate, "qd-packets-per-second", 0, "if greater than 0, run continuous queuing-delay probes sending this many packets a second")
	fs.DurationVar(&c.qdTimeout, "qd-packet-timeout", 5*time.Second, "a queuing-delay packet not received within this time counts as dropped")
	fs.StringVar(&c.regionCode, "region-code", "", "probe only the region with this region code or decimal region ID")
	fs.BoolVar(&c.dev, "dev", false, "take the mesh key from the TAILSCALE_DERPER_MESH_KEY environment variable")
	fs.StringVar(&c.meshPSKFile, "mesh-psk-file", "", "file holding the mesh key (64 hex digits), presented by mesh, bandwidth and queuing-delay probes")
	fs.StringVar(&c.secretsURL, "secrets-url", "", "setec server to fetch the mesh key from (not supported; accepted for compatibility)")
	fs.StringVar(&c.secretsPath, "secrets-path-prefix", "prod/derp", "setec secret name prefix (not supported)")
	fs.StringVar(&c.secretsCache, "secrets-cache-dir", defaultSecretsCacheDir(), "setec cache directory (not supported)")
	fs.BoolVar(&c.jsonOut, "json", false, "with -once, print one JSON object per probe (name, result, latency, error) on standard output")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected arguments: %q", fs.Args())
		fmt.Fprintln(fs.Output(), err)
		return c, err
	}
	return c, nil
}

// longVersion describes the build.
func longVersion() string {
	v := "(devel)"
	var rev string
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	if rev != "" {
		return "openderp derpprobe " + v + " (" + rev + ")"
	}
	return "openderp derpprobe " + v
}

// defaultSecretsCacheDir is $HOME/.cache/derper-secrets, or "" without a
// home directory.
func defaultSecretsCacheDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "derper-secrets")
}
