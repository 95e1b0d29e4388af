package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openderp/openderp/internal/doctest"
)

// This file is the one generator of derper's flag reference. From
// goldenFlags (names, types, reference defaults, origin) and the usage
// texts that registerFlags gives -h, it writes docs/flags.md (with the
// origin of each flag) and the "derper flags" section of docs/operating.md
// (the operator's table). Both commands below do the same thing:
//
//	go test ./cmd/derper -run TestFlagsDoc -update-flags-doc
//	make docs
//
// TestE2EHelp holds the real binary's -h against goldenFlags, and
// internal/doctest's TestFlagTables reads both tables back and compares
// them with a freshly built binary's -h, so a flag that changes without
// the docs fails a test.

var updateFlagsDoc = flag.Bool("update-flags-doc", false, "rewrite docs/flags.md and the flag table of docs/operating.md from the flag definitions")

// openderpOnlyPrefix starts the usage text of every flag the reference
// does not have.
const openderpOnlyPrefix = "openderp only: "

// flagDoc is one flag as both documents show it.
type flagDoc struct {
	name, typ string
	def       string // Markdown cell
	origin    string
	ours      bool   // openderp only
	usage     string // without openderpOnlyPrefix
}

// flagDocs returns goldenFlags with their usage texts and rendered
// defaults, in goldenFlags order.
func flagDocs() []flagDoc {
	fs, _ := testFlagSet()
	var docs []flagDoc
	for _, f := range goldenFlags {
		usage := "(not registered)"
		if fl := fs.Lookup(f.name); fl != nil {
			_, usage = flag.UnquoteUsage(fl)
		}
		d := flagDoc{name: f.name, typ: f.typ, origin: f.origin, ours: f.origin == "openderp"}
		d.usage = strings.TrimPrefix(usage, openderpOnlyPrefix)
		if d.typ == "" {
			d.typ = "bool"
		}
		switch f.name {
		case "certdir":
			d.def = "`<user cache dir>/tailscale/derper-certs` *"
		case "mesh-psk-file":
			d.def = "first existing of `/home/derp/keys/derp-mesh.key`, `$HOME/keys/derp-mesh.key` *"
		default:
			switch {
			case f.def == "" && d.typ == "bool":
				d.def = "`false`"
			case f.def == "":
				d.def = "—"
			default:
				d.def = "`" + strings.Trim(f.def, `"`) + "`"
			}
		}
		docs = append(docs, d)
	}
	return docs
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// flagsDoc renders docs/flags.md.
func flagsDoc() string {
	var b strings.Builder
	b.WriteString(`# derper flags

Generated from cmd/derper by ` + "`make docs`" + ` (the same as
` + "`go test ./cmd/derper -run TestFlagsDoc -update-flags-doc`" + `), which also
writes the table in [operating.md](operating.md#every-flag); a test fails
when either file and ` + "`derper -h`" + ` disagree.

Origin says where a flag comes from: **v1.76.3** (the reference release
openderp first matched), **Tailscale vX.Y** (added to Tailscale's derper in
that release, after v1.76.3), or **openderp only** (not in Tailscale's
derper; its help text starts with "openderp only:"). Every flag the
reference has keeps the reference's default. Defaults are as
` + "`derper -h`" + ` prints them; the two marked * depend on the machine.
Deliberately absent: ` + "`-ace`, `-secrets-url`, `-secrets-path-prefix`, `-secrets-cache-dir`" + `
(Tailscale-internal, see [compat.md](compat.md#derper-internal-flags)).

| Flag | Type | Default | Origin | Meaning |
|---|---|---|---|---|
`)
	for _, d := range flagDocs() {
		origin := d.origin
		if d.ours {
			origin = "**openderp only**"
		}
		fmt.Fprintf(&b, "| `-%s` | %s | %s | %s | %s |\n", d.name, d.typ, d.def, origin, cell(d.usage))
	}
	return b.String()
}

// operatingFlagTable renders the "derper flags" section of
// docs/operating.md.
func operatingFlagTable() string {
	var b strings.Builder
	b.WriteString("| Flag | Type | Default | Meaning |\n|---|---|---|---|\n")
	for _, d := range flagDocs() {
		usage := cell(d.usage)
		if d.ours {
			usage = "(openderp only) " + usage
		}
		fmt.Fprintf(&b, "| `-%s` | %s | %s | %s |\n", d.name, d.typ, d.def, usage)
	}
	return b.String()
}

// TestFlagsDoc keeps docs/flags.md and the flag table of docs/operating.md
// in step with the code, and with -update-flags-doc rewrites them.
func TestFlagsDoc(t *testing.T) {
	docs := filepath.Join("..", "..", "docs")
	flagsPath := filepath.Join(docs, "flags.md")
	opPath := filepath.Join(docs, "operating.md")
	wantFlags := flagsDoc()

	b, err := os.ReadFile(opPath)
	if err != nil {
		t.Fatal(err)
	}
	op := string(b)
	wantOp, err := doctest.ReplaceSection(op, "derper flags", operatingFlagTable())
	if err != nil {
		t.Fatalf("docs/operating.md: %v", err)
	}

	if *updateFlagsDoc {
		if err := os.WriteFile(flagsPath, []byte(wantFlags), 0o644); err != nil {
			t.Fatal(err)
		}
		if wantOp != op {
			if err := os.WriteFile(opPath, []byte(wantOp), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := os.ReadFile(flagsPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != wantFlags {
		t.Errorf("docs/flags.md is stale; run make docs")
	}
	if !*updateFlagsDoc && wantOp != op {
		t.Errorf("docs/operating.md: the derper flag table is stale; run make docs")
	}
}

// TestFlagOrigins checks that a flag's help text says "openderp only: "
// exactly when goldenFlags says the reference lacks it, so -h, flags.md
// and operating.md mark the same flags.
func TestFlagOrigins(t *testing.T) {
	fs, _ := testFlagSet()
	for _, f := range goldenFlags {
		fl := fs.Lookup(f.name)
		if fl == nil {
			continue // TestFlagDefaults reports it
		}
		ours := f.origin == "openderp"
		if marked := strings.HasPrefix(fl.Usage, openderpOnlyPrefix); marked != ours {
			t.Errorf("-%s: origin %q but help text %q; openderp's own flags, and only they, start with %q",
				f.name, f.origin, fl.Usage, openderpOnlyPrefix)
		}
	}
}
