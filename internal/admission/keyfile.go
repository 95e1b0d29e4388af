package admission

import (
	"context"
	"errors"
	"expvar"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openderp/openderp/key"
)

// MaxKeyFileSize bounds a key list file: about 900,000 keys.
const MaxKeyFileSize = 64 << 20

// maxKeyFileSize is MaxKeyFileSize, smaller in tests.
var maxKeyFileSize int64 = MaxKeyFileSize

// ErrNotListed is KeyFile.Admit's refusal of a key missing from the list.
var ErrNotListed = errors.New("node key not in the -verify-clients-file list")

// KeyFile is an allow list of node keys read from a file (see
// ParseKeyList). Reload and Poll re-read it; a version that cannot be read
// or parsed is logged and counted, and the previous list stays in force.
type KeyFile struct {
	path string
	logf func(string, ...any)

	keys atomic.Pointer[map[key.NodePublic]struct{}] // replaced whole by load

	mu       sync.Mutex // serialises loads (SIGHUP and the poller)
	stamp    fileStamp  // guarded by mu; the version last loaded or tried
	reloads  expvar.Int
	failures expvar.Int
}

// OpenKeyFile reads the key list at path. It fails if the first read
// does; logf receives the outcome of every later reload.
func OpenKeyFile(path string, logf func(string, ...any)) (*KeyFile, error) {
	f := &KeyFile{path: path, logf: logf, stamp: stampFile(path)}
	keys, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	f.keys.Store(&keys)
	return f, nil
}

// readKeyFile reads and parses the list at path.
func readKeyFile(path string) (map[key.NodePublic]struct{}, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading key list: %w", err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading key list %s: %w", path, err)
	}
	if int64(len(b)) > maxKeyFileSize {
		return nil, fmt.Errorf("key list %s: larger than %d bytes", path, maxKeyFileSize)
	}
	keys, err := ParseKeyList(b)
	if err != nil {
		return nil, fmt.Errorf("key list %s: %w", path, err)
	}
	return keys, nil
}

// Path returns the file's path.
func (f *KeyFile) Path() string { return f.path }

// Len returns the number of keys in force.
func (f *KeyFile) Len() int { return len(*f.keys.Load()) }

// Reload re-reads the file; why says what triggered it, for the log. On
// failure the previous list stays in force and the error is returned.
func (f *KeyFile) Reload(why string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stamp = stampFile(f.path)
	keys, err := readKeyFile(f.path)
	if err != nil {
		f.failures.Add(1)
		f.logf("admission: key list not reloaded (%s); keeping %d keys: %v", why, f.Len(), err)
		return err
	}
	f.keys.Store(&keys)
	f.reloads.Add(1)
	f.logf("admission: key list reloaded (%s): %d keys", why, len(keys))
	return nil
}

// Admit is a derp.AdmitFunc admitting the keys on the list.
func (f *KeyFile) Admit(_ context.Context, k key.NodePublic, _ netip.AddrPort) error {
	if _, ok := (*f.keys.Load())[k]; !ok {
		return ErrNotListed
	}
	return nil
}

// ExpVar returns the list's metrics: reload outcomes and the number of
// keys in force.
func (f *KeyFile) ExpVar() *expvar.Map {
	m := new(expvar.Map)
	m.Set("counter_reloads", &f.reloads)
	m.Set("counter_reload_failures", &f.failures)
	m.Set("gauge_keys", expvar.Func(func() any { return int64(f.Len()) }))
	return m
}

// fileStamp identifies one version of a file.
type fileStamp struct {
	size, mtime int64 // mtime in UnixNano
	missing     bool  // stat failed
}

func stampFile(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{missing: true}
	}
	return fileStamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
}

// Poll checks the file on every tick until ctx ends, and reloads it once
// it differs from the version last loaded or tried and has stayed the
// same for one tick, so a file still being written is not read half
// done and a bad version is tried once rather than on every tick.
func (f *KeyFile) Poll(ctx context.Context, tick <-chan time.Time) {
	prev := stampFile(f.path)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
		cur := stampFile(f.path)
		f.mu.Lock()
		tried := f.stamp
		f.mu.Unlock()
		if cur != tried && cur == prev {
			f.Reload("file changed")
		}
		prev = cur
	}
}
