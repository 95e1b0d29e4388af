package derphttp_test

import (
	"testing"

	"github.com/openderp/openderp/internal/leakcheck"
)

// TestMain fails the run if goroutines of the relay packages outlive the
// tests.
func TestMain(m *testing.M) {
	leakcheck.Main(m, "openderp/derphttp", "openderp/derp.")
}
