package main

import (
	"os"
	"testing"

	"github.com/openderp/openderp/internal/leakcheck"
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
	leakcheck.Main(m, "github.com/openderp/openderp/")
}
