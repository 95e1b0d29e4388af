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

// FuzzParseHelp: ParseHelp never panics, and what it parses renders to a
// table with one row per flag.
func FuzzParseHelp(f *testing.F) {
	f.Add("Usage:\n  -a string\n    \taddr (default \":443\")\n  -x\tbool\n")
	f.Add("  -dev\n    \tdev\n")
	f.Fuzz(func(t *testing.T, out string) {
		flags, err := ParseHelp(out)
		if err != nil {
			return
		}
		table := FlagTable(flags)
		if got := strings.Count(table, "\n"); got != len(flags)+2 {
			t.Fatalf("table has %d lines for %d flags:\n%s", got, len(flags), table)
		}
	})
}
