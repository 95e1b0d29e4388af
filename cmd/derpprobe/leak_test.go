package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the run if goroutines of this module outlive the tests.
// With DERPPROBE_TEST_MAIN=1 in the environment it runs main instead, so
// that tests can run the command as a process.
func TestMain(m *testing.M) {
	if os.Getenv("DERPPROBE_TEST_MAIN") == "1" {
		// Re-executed by a test to run the real command.
		os.Args = append([]string{"derpprobe"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
	code := m.Run()
	if code == 0 {
		if leaked := waitNoLeaks(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "leaked goroutines:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

func waitNoLeaks(limit time.Duration) string {
	deadline := time.Now().Add(limit)
	for {
		leaked := leakedGoroutines()
		if leaked == "" || time.Now().After(deadline) {
			return leaked
		}
		time.Sleep(50 * time.Millisecond) // polling the runtime; nothing to wait on
	}
}

func leakedGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "TestMain") || strings.Contains(g, "waitNoLeaks") {
			continue
		}
		if strings.Contains(g, "github.com/openderp/openderp/") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}
