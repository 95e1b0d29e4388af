package main

import (
	"crypto/x509"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeReloader counts reloads and fails while err is set.
type fakeReloader struct {
	crt, key string

	mu    sync.Mutex
	n     int
	err   error
	serve *x509.Certificate
}

func (f *fakeReloader) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if f.err != nil {
		return f.err
	}
	f.serve = &x509.Certificate{SerialNumber: big.NewInt(int64(f.n)), NotAfter: time.Unix(1e9+int64(f.n), 0)}
	return nil
}

func (f *fakeReloader) Leaf() *x509.Certificate {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.serve
}

func (f *fakeReloader) Files() (string, string) { return f.crt, f.key }

func (f *fakeReloader) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// TestCertPoll runs the poller's checks by hand: a change is
// reloaded once it has been stable for a tick, a bad version is tried
// once, and outcomes are counted and logged.
func TestCertPoll(t *testing.T) {
	dir := t.TempDir()
	f := &fakeReloader{crt: filepath.Join(dir, "h.crt"), key: filepath.Join(dir, "h.key"), serve: &x509.Certificate{SerialNumber: big.NewInt(0)}}
	mtime := time.Unix(1e9, 0)
	write := func(path, s string) {
		t.Helper()
		mtime = mtime.Add(time.Second)
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	write(f.crt, "c0")
	write(f.key, "k0")
	var logMu sync.Mutex
	var logs []string
	logf := func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		logs = append(logs, format)
	}
	c := newCertReloader(f, logf)
	st := c.newPollState()
	tickN := func(n int) {
		for range n {
			c.check(st)
		}
	}

	steps := []struct {
		name          string
		change        func()
		ticks         int
		reloads       int // total Reload calls after the step
		ok, failed    int64
		reloadFailing bool
	}{
		{"unchanged", func() {}, 3, 0, 0, 0, false},
		{"crt only, then settled", func() { write(f.crt, "c1") }, 1, 0, 0, 0, false},
		{"key too", func() { write(f.key, "k1") }, 1, 0, 0, 0, false},
		{"stable", func() {}, 1, 1, 1, 0, false},
		{"no change after reload", func() {}, 3, 1, 1, 0, false},
		{"bad pair tried once", func() { write(f.crt, "c2") }, 4, 2, 1, 1, true},
		{"deleted key", func() { os.Remove(f.key) }, 3, 3, 1, 2, true},
		{"good again", func() { write(f.key, "k3") }, 3, 4, 2, 2, false},
	}
	for _, s := range steps {
		f.mu.Lock()
		f.err = nil
		if s.reloadFailing {
			f.err = errors.New("bad pair")
		}
		f.mu.Unlock()
		s.change()
		tickN(s.ticks)
		if f.count() != s.reloads || c.reloads.Value() != s.ok || c.failures.Value() != s.failed {
			t.Fatalf("%s: reloads %d ok %d failed %d; want %d %d %d", s.name, f.count(), c.reloads.Value(), c.failures.Value(), s.reloads, s.ok, s.failed)
		}
	}
	c.reload("SIGHUP")
	logMu.Lock()
	defer logMu.Unlock()
	var ok, bad int
	for _, l := range logs {
		switch {
		case strings.Contains(l, "certificate reloaded"):
			ok++
		case strings.Contains(l, "certificate not reloaded"):
			bad++
		}
	}
	if ok != 3 || bad != 2 {
		t.Errorf("logged %d reloads and %d failures, want 3 and 2: %q", ok, bad, logs)
	}
	if v := c.expVar().Get("gauge_not_after_unix").String(); v != "1000000005" {
		t.Errorf("not_after gauge %s", v)
	}
}
