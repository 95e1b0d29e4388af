package doctest

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// referenceTexts are sentences of the reference's pages and error bodies
// that openderp replaced with its own (docs/compat.md#user-texts). None
// may come back into the main module's code.
var referenceTexts = []string{
	"This is a Tailscale DERP server",
	"DERP requires connection upgrade",
	"HTTP does not support general TCP support",
	"bogus probe method",
	`"Use HTTPS"`,
	"derp server disabled",
	"CONNECT not enabled",
	"debug access denied",
	"to permit access, set",
	"derp.Server ConsistencyCheck okay",
	"bad rate value",
	"mutex changed from",
	"running GC...",
	"skipping expvar",
	"missing name parameter",
	"Probe succeeded in",
	"Probe failed:",
	"probes are healthy",
	"Run Probe",
	"Prober metrics",
	"Debug info at",
}

// TestNoReferenceTexts scans the main module's non-test Go files and
// embedded HTML for the replaced reference texts.
func TestNoReferenceTexts(t *testing.T) {
	root := repoRoot(t)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			// Other modules (interop, bench, deploy/check) and test data
			// may quote the reference.
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || isModule(path)) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, "_test.go") || !(strings.HasSuffix(path, ".go") || strings.HasSuffix(path, ".html")) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, s := range referenceTexts {
			if strings.Contains(string(b), s) {
				t.Errorf("%s contains the reference's text %q; see docs/compat.md#user-texts", rel, s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// isModule reports whether dir holds its own go.mod.
func isModule(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "go.mod"))
	return err == nil
}
