package admission

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openderp/openderp/key"
)

// logSink collects log lines.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (l *logSink) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func admits(f interface {
	Admit(context.Context, key.NodePublic, netip.AddrPort) error
}, k key.NodePublic) bool {
	return f.Admit(context.Background(), k, netip.AddrPort{}) == nil
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestKeyFileReload(t *testing.T) {
	a, b := key.NewNode().Public(), key.NewNode().Public()
	path := filepath.Join(t.TempDir(), "keys")
	var logs logSink
	if _, err := OpenKeyFile(path, logs.logf); err == nil {
		t.Fatal("opened a missing file")
	}
	writeFile(t, path, "# ops\n"+a.String()+"\n")
	f, err := OpenKeyFile(path, logs.logf)
	if err != nil {
		t.Fatal(err)
	}
	if !admits(f, a) || admits(f, b) {
		t.Fatal("first load wrong")
	}
	if err := f.Admit(context.Background(), b, netip.AddrPort{}); !errors.Is(err, ErrNotListed) {
		t.Errorf("refusal = %v", err)
	}

	steps := []struct {
		text         string // "" removes the file
		wantErr      bool
		wantA, wantB bool
	}{
		{b.String(), false, false, true},
		{"garbage\n", true, false, true},
		{"", true, false, true},
		{a.String() + "\n" + b.String(), false, true, true},
		{"# nobody\n", false, false, false},
	}
	for i, st := range steps {
		if st.text == "" {
			os.Remove(path)
		} else {
			writeFile(t, path, st.text)
		}
		err := f.Reload("test")
		if (err != nil) != st.wantErr {
			t.Errorf("step %d: Reload = %v", i, err)
		}
		if admits(f, a) != st.wantA || admits(f, b) != st.wantB {
			t.Errorf("step %d: admits a=%v b=%v, want %v %v", i, admits(f, a), admits(f, b), st.wantA, st.wantB)
		}
	}
	if got := f.ExpVar().Get("counter_reloads").String(); got != "3" {
		t.Errorf("reloads = %s", got)
	}
	if got := f.ExpVar().Get("counter_reload_failures").String(); got != "2" {
		t.Errorf("failures = %s", got)
	}
	if !strings.Contains(logs.String(), "key list not reloaded (test); keeping 1 keys") {
		t.Errorf("logs:\n%s", logs.String())
	}
}

func TestKeyFileTooLarge(t *testing.T) {
	defer func(old int64) { maxKeyFileSize = old }(maxKeyFileSize)
	maxKeyFileSize = 1000
	path := filepath.Join(t.TempDir(), "keys")
	writeFile(t, path, strings.Repeat("#", 1001))
	if _, err := OpenKeyFile(path, t.Logf); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v", err)
	}
}

// The poller reloads a changed file once it has been stable for a tick,
// and tries a bad version only once.
func TestKeyFilePoll(t *testing.T) {
	a, b := key.NewNode().Public(), key.NewNode().Public()
	path := filepath.Join(t.TempDir(), "keys")
	writeFile(t, path, a.String())
	var logs logSink
	f, err := OpenKeyFile(path, logs.logf)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tick := make(chan time.Time) // unbuffered: a send returns once Poll has finished the previous tick
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Poll(ctx, tick)
	}()
	defer func() { cancel(); <-done }()
	step := func() { tick <- time.Time{} }
	// settle makes sure the last tick's work is done.
	settle := func() { step() }

	// A new version with a different size and time.
	writeFile(t, path, "# now b\n"+b.String()+"\n")
	future := time.Now().Add(time.Hour)
	os.Chtimes(path, future, future)
	step() // seen changing: not yet loaded
	settle()
	step() // stable: loaded
	settle()
	if !admits(f, b) || admits(f, a) {
		t.Fatalf("not reloaded; logs:\n%s", logs.String())
	}
	// A bad version is tried once.
	writeFile(t, path, "nonsense nonsense\n")
	future = future.Add(time.Hour)
	os.Chtimes(path, future, future)
	for range 5 {
		step()
	}
	settle()
	if got := f.ExpVar().Get("counter_reload_failures").String(); got != "1" {
		t.Errorf("failures = %s, want 1; logs:\n%s", got, logs.String())
	}
	if !admits(f, b) {
		t.Error("bad version replaced the list")
	}
}
