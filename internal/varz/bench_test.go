package varz

import (
	"io"
	"testing"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/key"
)

// BenchmarkDerpSet measures rendering the derp server's metrics set, the
// bulk of a /debug/varz scrape.
func BenchmarkDerpSet(b *testing.B) {
	s := derp.NewServer(key.NewNode(), nil)
	defer s.Close()
	v := s.ExpVar()
	b.ReportAllocs()
	for b.Loop() {
		WriteVar(io.Discard, "derp", v)
	}
}
