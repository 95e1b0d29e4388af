package varz

import (
	"bytes"
	"expvar"
	"regexp"
	"testing"
)

var validName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

// FuzzSanitize checks that any string becomes a valid metric name, and
// that valid names not starting with a digit pass unchanged.
func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"derp_accepts", "a-b.c", "", "1x", "é", "counter_labelmap_method_requests"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Sanitize(s)
		if !validName.MatchString(out) {
			t.Fatalf("Sanitize(%q) = %q, not a valid name", s, out)
		}
		if validName.MatchString(s) && out != s {
			t.Fatalf("Sanitize(%q) = %q, changed a valid name", s, out)
		}
		var buf bytes.Buffer
		v := new(expvar.Int)
		WriteVar(&buf, s, v) // must not panic on any name
	})
}
