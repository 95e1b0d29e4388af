package admission

import (
	"testing"

	"github.com/openderp/openderp/internal/leakcheck"
)

func TestMain(m *testing.M) {
	leakcheck.Main(m, "openderp/internal/admission.", "net/http.")
}
