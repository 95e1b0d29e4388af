package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"sync"
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
	m0, err := s.mem(ctx, hc)
	if err != nil {
		return nil, closeAll, err
	}
	rss0, err := s.rss()
	if err != nil {
		return nil, closeAll, err
	}
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range idleWorkers {
		wg.Go(func() {
			d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: idleConnectTimeout}, Config: tlsCfg}
			for i := range next {
				dctx, cancel := context.WithTimeout(ctx, idleConnectTimeout)
				conns[i], errs[i] = d.DialContext(dctx, "tcp", s.ready.Addr)
				cancel()
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, closeAll, fmt.Errorf("stalled connection %d: %w", i, err)
		}
	}
	mm, err := s.mem(ctx, hc)
	if err != nil {
		return nil, closeAll, err
	}
	rss, err := s.rss()
	if err != nil {
		return nil, closeAll, err
	}
	return metrics{
		"stall.tls.rss":  float64(rss-rss0) / float64(n) / 1024,
		"stall.tls.heap": float64(int64(mm.HeapObjectsBytes+mm.StackBytes)-int64(m0.HeapObjectsBytes+m0.StackBytes)) / float64(n) / 1024,
	}, closeAll, nil
}
