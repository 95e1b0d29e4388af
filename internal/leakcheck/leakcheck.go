// Package leakcheck finds goroutines that outlive a package's tests. Test
// mains use it to fail the run when a server, client or prober left a
// goroutine behind after Close.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Main runs the tests of m and then, if they passed, fails the run when a
// goroutine whose stack mentions any of marks (package paths such as
// "openderp/derp.") is still alive after a grace period of five seconds.
// It does not return.
func Main(m *testing.M, marks ...string) {
	code := m.Run()
	if code == 0 {
		if leaked := Wait(5*time.Second, marks...); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines left behind:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// Wait polls until no leaked goroutine matches marks or limit passes, and
// returns the stacks still leaked ("" if none). Goroutines on their way
// out get the time to finish; there is nothing to wait on but the runtime.
func Wait(limit time.Duration, marks ...string) string {
	deadline := time.Now().Add(limit)
	for {
		leaked := Leaked(marks...)
		if leaked == "" || time.Now().After(deadline) {
			return leaked
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Leaked returns the stacks of the goroutines that mention any of marks,
// other than test runners and this package's own.
func Leaked(marks ...string) string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "TestMain") || strings.Contains(g, "leakcheck.") ||
			strings.Contains(g, "testing.tRunner") || strings.Contains(g, "testing.(*F)") ||
			strings.Contains(g, "testing.runFuzz") {
			continue
		}
		for _, m := range marks {
			if strings.Contains(g, m) {
				out = append(out, g)
				break
			}
		}
	}
	return strings.Join(out, "\n\n")
}
