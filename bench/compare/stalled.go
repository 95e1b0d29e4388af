package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/openderp/openderp/internal/relayload"
)

// measureStalledTLS opens n connections to the TLS server s that complete
// the TLS handshake and then send nothing (issue 13's "2,000 that finish
// TLS and stall"), and reports the growth of the server's RSS and live Go
// heap plus stacks per connection. It returns the connections' closer,
// for after the server has stopped.
func measureStalledTLS(ctx context.Context, s *server, n int) (metrics, func(), error) {
	tlsCfg, err := relayload.PinnedTLSConfig(s.ready.Pin)
	if err != nil {
		return nil, func() {}, err
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	conns := make([]net.Conn, n)
	closeAll := func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}
	base, err := s.footprint(ctx, hc)
	if err != nil {
		return nil, closeAll, err
	}
	errs := make([]error, n)
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: idleConnectTimeout}, Config: tlsCfg}
	inParallel(n, func(i int) {
		dctx, cancel := context.WithTimeout(ctx, idleConnectTimeout)
		conns[i], errs[i] = d.DialContext(dctx, "tcp", s.ready.Addr)
		cancel()
	})
	for i, err := range errs {
		if err != nil {
			return nil, closeAll, fmt.Errorf("stalled connection %d: %w", i, err)
		}
	}
	f, err := s.footprint(ctx, hc)
	if err != nil {
		return nil, closeAll, err
	}
	rssKiB, goKiB := f.perConn(base, n)
	return metrics{"stall.tls.rss": rssKiB, "stall.tls.heap": goKiB}, closeAll, nil
}
