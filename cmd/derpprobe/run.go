package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/openderp/openderp/prober"
)

// testHooks lets tests reach what no flag sets.
type testHooks struct {
	tlsConfig *tls.Config         // base TLS config of the probes
	listening func(addr net.Addr) // called once the HTTP server listens
	tunName   string              // TUN device name instead of "derpprobe"
	stdout    io.Writer           // -json output instead of os.Stdout
}

// errProbesFailed is what run returns in once mode when a probe failed.
var errProbesFailed = errors.New("some probes failed")

// run probes until ctx is done or, with -once, until every probe ran.
func run(ctx context.Context, cfg config, logger *log.Logger) error {
	p := prober.New().WithSpread(cfg.spread).WithOnce(cfg.once).
		WithMetricNamespace("derpprobe").WithLogf(logger.Printf)
	defer p.Close()

	mk, err := loadMeshKey(cfg)
	if err != nil {
		return fmt.Errorf("failed to get mesh key: %w", err)
	}
	opts := []prober.DERPOpt{
		prober.WithMeshProbing(cfg.meshInterval),
		prober.WithSTUNProbing(cfg.stunInterval),
		prober.WithTLSProbing(cfg.tlsInterval),
		prober.WithBandwidthProbing(cfg.bwInterval, cfg.bwSize),
		prober.WithQueuingDelayProbing(cfg.qdRate, cfg.qdTimeout),
		prober.WithRegion(cfg.regionCode),
		prober.WithMeshKey(mk),
	}
	if cfg.tlsConfig != nil {
		opts = append(opts, prober.WithTLSConfig(cfg.tlsConfig))
	}
	if cfg.bwTUNAddr != "" && cfg.bwInterval > 0 {
		tun, err := openTUN(cfg)
		if err != nil {
			return err
		}
		defer tun.Close()
		logger.Printf("bandwidth probes use TUN device %s", tun.Name())
		opts = append(opts, prober.WithBandwidthTUN(tun))
	}
	dp, err := prober.DERP(p, cfg.derpMap, opts...)
	if err != nil {
		return err
	}
	p.Run("derpmap-probe", cfg.interval, nil, dp.ProbeMap())

	if cfg.once {
		logger.Printf("Waiting for all probes (may take up to 1m)")
		p.Wait()
		if cfg.jsonOut {
			out := cfg.stdout
			if out == nil {
				out = os.Stdout
			}
			return reportOnceJSON(p, out)
		}
		return reportOnce(p, logger)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(p, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	logger.Printf("Listening on %s", ln.Addr())
	if cfg.listening != nil {
		cfg.listening(ln.Addr())
	}
	srv := &http.Server{
		Handler:           newMux(p, reg, logger),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          logger,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdownCtx)
	<-errc
	return nil
}

// reportOnce logs one line per finished probe, good ones first, each
// group sorted, and returns errProbesFailed if any probe failed.
//
// The reference exits 0 even then. See docs/compat.md#prober-once-exit.
func reportOnce(p *prober.Prober, logger *log.Logger) error {
	var good, bad []string
	for name, info := range p.ProbeInfo() {
		switch {
		case info.End.IsZero():
		case info.Succeeded():
			good = append(good, fmt.Sprintf("good: %s: %v", name, info.Latency))
		default:
			bad = append(bad, fmt.Sprintf("bad: %s: %s", name, info.Error))
		}
	}
	slices.Sort(good)
	slices.Sort(bad)
	for _, l := range append(good, bad...) {
		logger.Print(l)
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %d of %d", errProbesFailed, len(bad), len(good)+len(bad))
	}
	return nil
}

// openTUN creates the TUN device of -bw-tun-ipv4-addr.
func openTUN(cfg config) (*prober.TUN, error) {
	addr, err := netip.ParseAddr(cfg.bwTUNAddr)
	if err != nil || !addr.Is4() {
		return nil, fmt.Errorf("-bw-tun-ipv4-addr %q: not an IPv4 address", cfg.bwTUNAddr)
	}
	name := cfg.tunName
	if name == "" {
		name = "derpprobe"
	}
	return prober.OpenTUN(name, addr)
}
