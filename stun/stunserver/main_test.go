package stunserver_test

import (
	"testing"

	"github.com/openderp/openderp/internal/leakcheck"
)

// TestMain fails the package if a test leaves a serving goroutine behind.
func TestMain(m *testing.M) {
	leakcheck.Main(m, "stunserver.(*Server)")
}
