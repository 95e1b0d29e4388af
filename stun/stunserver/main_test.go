package stunserver_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the package if a test leaves a serving goroutine behind.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := checkNoServeGoroutines(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// checkNoServeGoroutines waits a bounded time for goroutines running this
// package's code to finish, and reports those that don't.
func checkNoServeGoroutines() error {
	var stacks string
	for range 100 {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "stunserver.(*Server)") {
			return nil
		}
		// Nothing to wait on but the scheduler; a goroutine that has been
		// told to stop gets a few milliseconds to do so.
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("leaked stunserver goroutines:\n%s", stacks)
}
