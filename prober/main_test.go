package prober_test

import (
	"testing"

	"github.com/openderp/openderp/internal/leakcheck"
)

// TestMain fails the run if goroutines of this module outlive the tests.
func TestMain(m *testing.M) {
	leakcheck.Main(m, "github.com/openderp/openderp/")
}
