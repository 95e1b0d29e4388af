package doctest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// openderpOnly starts the help text of every flag the reference derper
// lacks; the generated tables show it as a mark instead.
const openderpOnly = "openderp only: "

// TestFlagTables reads back the two derper flag references that
// cmd/derper's TestFlagsDoc generates (`make docs`) and holds them against
// the -h of a freshly built derper: the same flags, types, meanings,
// non-machine defaults and "openderp only" marks. It never writes; the
// generator is in cmd/derper/flagdoc_test.go.
func TestFlagTables(t *testing.T) {
	root := repoRoot(t)
	flags, err := ParseHelp(help(t, filepath.Join(binaries(t), "derper")))
	if err != nil {
		t.Fatalf("derper -h: %v", err)
	}
	if len(flags) < 20 {
		t.Fatalf("derper -h lists %d flags", len(flags))
	}

	op, err := os.ReadFile(filepath.Join(root, "docs", "operating.md"))
	if err != nil {
		t.Fatal(err)
	}
	section, err := Section(string(op), "derper flags")
	if err != nil {
		t.Fatalf("docs/operating.md: %v", err)
	}
	// operating.md: Flag | Type | Default | Meaning, with "(openderp only) ".
	checkTable(t, "docs/operating.md", section, flags, 3, func(row TableRow) (meaning string, ours bool) {
		m, ok := strings.CutPrefix(row.Cells[2], "(openderp only) ")
		return m, ok
	})

	fl, err := os.ReadFile(filepath.Join(root, "docs", "flags.md"))
	if err != nil {
		t.Fatal(err)
	}
	// flags.md: Flag | Type | Default | Origin | Meaning.
	checkTable(t, "docs/flags.md", string(fl), flags, 4, func(row TableRow) (string, bool) {
		return row.Cells[3], row.Cells[2] == "**openderp only**"
	})
}

// TestDerpprobeFlagTable holds the hand-written flag table of
// docs/derpprobe.md against a freshly built derpprobe's -h: the same flag
// names, with the same types. (Its meanings are longer than -h's, so only
// names and types are compared.)
func TestDerpprobeFlagTable(t *testing.T) {
	root := repoRoot(t)
	flags, err := ParseHelp(help(t, filepath.Join(binaries(t), "derpprobe")))
	if err != nil {
		t.Fatalf("derpprobe -h: %v", err)
	}
	if len(flags) < 10 {
		t.Fatalf("derpprobe -h lists %d flags", len(flags))
	}
	md, err := os.ReadFile(filepath.Join(root, "docs", "derpprobe.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := ParseTable(string(md))
	if err != nil {
		t.Fatalf("docs/derpprobe.md: %v", err)
	}
	types := map[string]string{}
	for _, r := range rows {
		types[r.Name] = r.Cells[0]
	}
	for _, f := range flags {
		typ := f.Type
		if typ == "" {
			typ = "bool"
		}
		got, ok := types[f.Name]
		switch {
		case !ok:
			t.Errorf("docs/derpprobe.md: no row for -%s", f.Name)
		case got != typ:
			t.Errorf("docs/derpprobe.md: -%s has type %q, -h says %q", f.Name, got, typ)
		}
		delete(types, f.Name)
	}
	for name := range types {
		t.Errorf("docs/derpprobe.md: -%s is documented but derpprobe -h does not list it", name)
	}
}

// checkTable compares the flag rows of md, each with ncells cells after the
// flag's, with the flags of -h.
func checkTable(t *testing.T, where, md string, flags []Flag, ncells int, meaning func(TableRow) (string, bool)) {
	t.Helper()
	rows, err := ParseTable(md)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	byName := map[string]TableRow{}
	for _, r := range rows {
		if len(r.Cells) != ncells {
			t.Errorf("%s: -%s has %d cells, want %d", where, r.Name, len(r.Cells), ncells)
			continue
		}
		byName[r.Name] = r
	}
	stale := false
	for _, f := range flags {
		r, ok := byName[f.Name]
		if !ok {
			t.Errorf("%s: no row for -%s", where, f.Name)
			stale = true
			continue
		}
		delete(byName, f.Name)
		typ := f.Type
		if typ == "" {
			typ = "bool"
		}
		if r.Cells[0] != typ {
			t.Errorf("%s: -%s has type %q, -h says %q", where, f.Name, r.Cells[0], typ)
			stale = true
		}
		if !strings.HasSuffix(r.Cells[1], " *") { // machine-dependent defaults are described
			if got, want := tableDefault(r.Cells[1]), strings.Trim(f.Default, `"`); got != want && !(typ == "bool" && got == "false" && want == "") {
				t.Errorf("%s: -%s has default %q, -h says %q", where, f.Name, got, want)
				stale = true
			}
		}
		m, ours := meaning(r)
		usage, marked := strings.CutPrefix(f.Usage, openderpOnly)
		if m != usage || ours != marked {
			t.Errorf("%s: -%s reads %q (openderp only: %v), -h says %q", where, f.Name, m, ours, f.Usage)
			stale = true
		}
	}
	for name := range byName {
		t.Errorf("%s: -%s is documented but derper -h does not list it", where, name)
		stale = true
	}
	if stale {
		t.Logf("run `make docs` to regenerate %s", where)
	}
}

// tableDefault turns a generated default cell back into the value -h
// prints without quotes: "—" means none.
func tableDefault(c string) string {
	if c == "—" {
		return ""
	}
	return strings.Trim(c, "`")
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
