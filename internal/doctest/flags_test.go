package doctest

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated sections of docs/operating.md")

// TestFlagTables checks that every "<bin> flags" section of
// docs/operating.md is exactly what the built binary's -h says, and with
// -update rewrites them.
func TestFlagTables(t *testing.T) {
	root := repoRoot(t)
	path := filepath.Join(root, "docs", "operating.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	bin := binaries(t)
	for _, name := range []string{"derper", "derpprobe", "stunc"} {
		section := name + " flags"
		old, err := Section(doc, section)
		if err != nil {
			if name == "derper" {
				t.Errorf("docs/operating.md: %v", err)
			}
			continue
		}
		flags, err := ParseHelp(help(t, filepath.Join(bin, name)))
		if err != nil {
			t.Fatalf("%s -h: %v", name, err)
		}
		if len(flags) == 0 {
			t.Fatalf("%s -h lists no flags", name)
		}
		want := FlagTable(flags)
		if old == want {
			continue
		}
		if *update {
			if doc, err = ReplaceSection(doc, section, want); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Errorf("docs/operating.md: the %s flag table differs from `%s -h`; run `make docs`.\ndocs say:\n%s\nbinary says:\n%s", name, name, old, want)
	}
	if *update && doc != string(b) {
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s", path)
	}
}

// help runs bin -h with a scratch home, and writes that home as $HOME so
// the defaults that depend on it read the same on every machine.
func help(t *testing.T, bin string) string {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(bin, "-h")
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	out, _ := cmd.CombinedOutput() // -h exits 0 or 2 depending on the flag package's mode
	return strings.ReplaceAll(string(out), home, "$HOME")
}
