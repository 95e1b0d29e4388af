package derphttp

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestKeyLogOpenedOnce is the regression test for SSLKEYLOGFILE being
// opened anew on every dial and never closed.
func TestKeyLogOpenedOnce(t *testing.T) {
	saved := keyLog.w
	keyLog.once = *new(sync.Once)
	t.Cleanup(func() { keyLog.once = *new(sync.Once); keyLog.w = saved })
	path := filepath.Join(t.TempDir(), "keys")
	t.Setenv("SSLKEYLOGFILE", path)
	fds := func() int { ents, _ := os.ReadDir("/proc/self/fd"); return len(ents) }
	logs := 0
	logf := func(string, ...any) { logs++ }
	first := keyLogWriter(logf)
	if first == nil {
		t.Fatal("no writer")
	}
	before := fds()
	for range 50 {
		if w := keyLogWriter(logf); w != first {
			t.Fatal("a second writer")
		}
	}
	if after := fds(); after > before {
		t.Fatalf("descriptors grew from %d to %d", before, after)
	}
	if logs != 1 {
		t.Fatalf("warned %d times, want once", logs)
	}
	if c, ok := first.(*os.File); ok {
		c.Close()
	}
}
