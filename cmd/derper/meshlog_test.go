package main

import (
	"fmt"
	"testing"
)

// TestMeshLogfHostNotAFormat is the regression test for the mesh host being
// pasted into a format string: a '%' in it garbled every line.
func TestMeshLogfHostNotAFormat(t *testing.T) {
	var got string
	logf := func(format string, args ...any) { got = fmt.Sprintf(format, args...) }
	meshLogf(logf, "h%d%s.example")("connected; %d peers", 3)
	if want := `mesh("h%d%s.example"): connected; 3 peers`; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
