package latest

import (
	"testing"

	"github.com/openderp/openderp/internal/leakcheck"
)

func TestMain(m *testing.M) {
	leakcheck.Main(m, "github.com/openderp/openderp/")
}
