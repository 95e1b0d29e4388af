package loopguard

import (
	"testing"

	"github.com/openderp/openderp/internal/leakcheck"
)

// TestMain fails the package if Watch leaves its sampler running.
func TestMain(m *testing.M) {
	leakcheck.Main(m, "loopguard.")
}
