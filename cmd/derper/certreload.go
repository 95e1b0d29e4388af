package main

import (
	"context"
	"crypto/x509"
	"expvar"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/openderp/openderp/internal/certs"
)

// certPollInterval is how often manual certificate files are checked for
// changes: two stats per tick.
const certPollInterval = 5 * time.Second

// certReloader reloads a manual certificate on SIGHUP and when its files
// change, logging and counting each outcome.
type certReloader struct {
	r     certs.Reloader
	logf  func(string, ...any)
	warnf func(string, ...any) // for failures; logf when nil

	mu       sync.Mutex // serialises reloads from SIGHUP and the poller
	reloads  expvar.Int
	failures expvar.Int
}

func newCertReloader(r certs.Reloader, logf func(string, ...any)) *certReloader {
	return &certReloader{r: r, logf: logf}
}

// describe names a certificate in log lines.
func describe(c *x509.Certificate) string {
	return fmt.Sprintf("serial %x, valid until %s", c.SerialNumber, c.NotAfter.UTC().Format(time.RFC3339))
}

// reload tries once; why says what triggered it.
func (c *certReloader) reload(why string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.r.Reload(); err != nil {
		c.failures.Add(1)
		warnf := c.warnf
		if warnf == nil {
			warnf = c.logf
		}
		warnf("derper: certificate not reloaded (%s); still serving %s: %v", why, describe(c.r.Leaf()), err)
		return
	}
	c.reloads.Add(1)
	c.logf("derper: certificate reloaded (%s): now serving %s", why, describe(c.r.Leaf()))
}

// expVar returns the derper_cert set: reload outcomes and the expiry of
// the certificate being served.
func (c *certReloader) expVar() *expvar.Map {
	m := new(expvar.Map)
	m.Set("counter_reloads", &c.reloads)
	m.Set("counter_reload_failures", &c.failures)
	m.Set("gauge_not_after_unix", expvar.Func(func() any { return c.r.Leaf().NotAfter.Unix() }))
	return m
}

// fileStamp identifies one version of the certificate files.
type fileStamp struct {
	crtSize, keySize   int64
	crtMtime, keyMtime int64 // UnixNano
	crtErr, keyErr     bool  // stat failed
}

func stampFiles(crt, key string) fileStamp {
	var s fileStamp
	if fi, err := os.Stat(crt); err != nil {
		s.crtErr = true
	} else {
		s.crtSize, s.crtMtime = fi.Size(), fi.ModTime().UnixNano()
	}
	if fi, err := os.Stat(key); err != nil {
		s.keyErr = true
	} else {
		s.keySize, s.keyMtime = fi.Size(), fi.ModTime().UnixNano()
	}
	return s
}

// watch checks the files every interval until ctx ends.
func (c *certReloader) watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	go func() {
		defer t.Stop()
		c.poll(ctx, t.C)
	}()
}

// poll calls check on every tick until ctx ends.
func (c *certReloader) poll(ctx context.Context, tick <-chan time.Time) {
	st := c.newPollState()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
		c.check(st)
	}
}

// pollState is what the poller remembers between ticks.
type pollState struct {
	tried fileStamp // the version last loaded or tried
	prev  fileStamp // the version seen at the previous tick
}

func (c *certReloader) newPollState() *pollState {
	s := stampFiles(c.r.Files())
	return &pollState{tried: s, prev: s}
}

// check reloads once the files differ from the version last tried and
// have not changed since the previous check, so a pair written one file
// at a time is read whole. A bad version is tried once, not every time.
func (c *certReloader) check(st *pollState) {
	cur := stampFiles(c.r.Files())
	if cur != st.tried && cur == st.prev {
		st.tried = cur
		c.reload("files changed")
	}
	st.prev = cur
}

// watchCertificate publishes the reload metrics of r, registers its
// reload on hub and polls its files until ctx ends.
func watchCertificate(ctx context.Context, r certs.Reloader, hub *reloadHub, lg *slog.Logger) {
	c := newCertReloader(r, printfLogger(lg, slog.LevelInfo))
	c.warnf = printfLogger(lg, slog.LevelWarn)
	publish("derper_cert", c.expVar())
	hub.add("certificate", func() { c.reload("SIGHUP") })
	c.watch(ctx, certPollInterval)
}
