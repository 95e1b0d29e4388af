package doctest

import (
	"strings"
	"testing"
)

// FuzzExtract: Extract never panics, and every block it returns is text
// of the document, after the line it claims.
func FuzzExtract(f *testing.F) {
	f.Add("<!-- doctest background ready=http://x/ -->\n```sh\nmake run\n```\n")
	f.Add("```\n<!-- doctest -->\n```\n<!-- doctest expect=\"a\" -->\n~~~\nx\n~~~\n")
	f.Add("<!-- doctest -->\n")
	f.Fuzz(func(t *testing.T, doc string) {
		blocks, err := Extract(doc)
		if err != nil {
			return
		}
		lines := strings.Split(doc, "\n")
		for _, b := range blocks {
			if b.Line < 1 || b.Line > len(lines) {
				t.Fatalf("block line %d outside a %d-line document", b.Line, len(lines))
			}
			rest := strings.Join(lines[b.Line:], "\n")
			if !strings.Contains(rest+"\n", b.Text) {
				t.Fatalf("block text %q is not in the document after line %d", b.Text, b.Line)
			}
			for k := range b.Opts {
				if !knownOpts[k] {
					t.Fatalf("unknown option %q accepted", k)
				}
			}
		}
	})
}

// FuzzParseHelp: ParseHelp never panics, and every flag it returns has a
// name without spaces that the input lists as a flag line.
func FuzzParseHelp(f *testing.F) {
	f.Add("Usage:\n  -a string\n    \taddr (default \":443\")\n  -x\tbool\n")
	f.Add("  -dev\n    \tdev\n")
	f.Fuzz(func(t *testing.T, out string) {
		flags, err := ParseHelp(out)
		if err != nil {
			return
		}
		for _, fl := range flags {
			if fl.Name == "" || strings.ContainsAny(fl.Name, " \t\n") {
				t.Fatalf("bad name %q", fl.Name)
			}
			if !strings.Contains(out, "  -"+fl.Name) {
				t.Fatalf("-%s is not in the input", fl.Name)
			}
		}
		if n := strings.Count("\n"+out, "\n  -"); len(flags) > n {
			t.Fatalf("%d flags from %d flag lines", len(flags), n)
		}
	})
}

// FuzzParseTable: ParseTable never panics, returns at most one row per
// flag line, and every row has a name and at least one more cell.
func FuzzParseTable(f *testing.F) {
	f.Add("| `-a` | string | `:443` | listen \\| here |\n")
	f.Add("| Flag | Type |\n|---|---|\n| `-dev` | bool |\n")
	f.Fuzz(func(t *testing.T, md string) {
		rows, err := ParseTable(md)
		if err != nil {
			return
		}
		if n := strings.Count("\n"+md, "\n| `-"); len(rows) > n {
			t.Fatalf("%d rows from %d flag lines", len(rows), n)
		}
		for _, r := range rows {
			if r.Name == "" || len(r.Cells) == 0 {
				t.Fatalf("bad row %+v", r)
			}
		}
	})
}
