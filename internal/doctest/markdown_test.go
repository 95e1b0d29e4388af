package doctest

import (
	"reflect"
	"strings"
	"testing"
)

func TestExtract(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		want    []Block
		wantErr string
	}{
		{
			name: "plain and marked",
			doc:  "# T\n```sh\nnot run\n```\n<!-- doctest -->\n```sh\necho hi\n```\n",
			want: []Block{{Line: 6, Lang: "sh", Opts: map[string]string{}, Text: "echo hi\n"}},
		},
		{
			name: "options",
			doc:  "<!-- doctest background ready=http://127.0.0.1:3340/ expect=\"a b\" -->\n~~~bash\nx\n\ny\n~~~\n",
			want: []Block{{Line: 2, Lang: "bash", Opts: map[string]string{"background": "", "ready": "http://127.0.0.1:3340/", "expect": "a b"}, Text: "x\n\ny\n"}},
		},
		{
			name: "marker inside a fence is text",
			doc:  "```\n<!-- doctest -->\n```\n",
		},
		{
			name: "longer fence",
			doc:  "<!-- doctest -->\n````sh\n```\n````\n",
			want: []Block{{Line: 2, Lang: "sh", Opts: map[string]string{}, Text: "```\n"}},
		},
		{name: "dangling marker", doc: "<!-- doctest -->\ntext\n", wantErr: "line 1"},
		{name: "marker at end", doc: "<!-- doctest -->\n", wantErr: "line 1"},
		{name: "unknown option", doc: "<!-- doctest bakground -->\n```\n```\n", wantErr: "unknown doctest option"},
		{name: "unclosed", doc: "<!-- doctest -->\n```sh\necho\n", wantErr: "unclosed"},
		{name: "unterminated quote", doc: "<!-- doctest expect=\"a -->\n```\n```\n", wantErr: "quote"},
		{name: "no close", doc: "<!-- doctest\n```\n```\n", wantErr: "-->"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Extract(tt.doc)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Extract error = %v; want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Extract = %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestParseHelp(t *testing.T) {
	out := "Usage of derper:\n" +
		"  -a string\n    \tlisten address (default \":443\")\n" +
		"  -dev\n    \tdev mode\n" +
		"  -stun\n    \trun STUN\n    \tsecond line (default true)\n" +
		"  -x\tone-letter bool\n" +
		"  -n int\n    \tcount\n"
	got, err := ParseHelp(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []Flag{
		{Name: "a", Type: "string", Default: `":443"`, Usage: "listen address"},
		{Name: "dev", Usage: "dev mode"},
		{Name: "stun", Default: "true", Usage: "run STUN second line"},
		{Name: "x", Usage: "one-letter bool"},
		{Name: "n", Type: "int", Usage: "count"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseHelp = %+v; want %+v", got, want)
	}
	if _, err := ParseHelp("  -a string\ngarbage\n"); err == nil {
		t.Error("ParseHelp accepted a stray line")
	}
}

func TestSections(t *testing.T) {
	doc := "intro\n" + beginMarker("x flags") + "\nold\n" + endMarker("x flags") + "\nafter\n"
	if s, err := Section(doc, "x flags"); err != nil || s != "old\n" {
		t.Fatalf("Section = %q, %v", s, err)
	}
	got, err := ReplaceSection(doc, "x flags", "new\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Replace(doc, "old\n", "new\n", 1); got != want {
		t.Errorf("ReplaceSection = %q; want %q", got, want)
	}
	if _, err := Section("nothing", "x flags"); err == nil {
		t.Error("Section found a missing section")
	}
}

func TestParseTable(t *testing.T) {
	md := "intro\n| Flag | Type | Meaning |\n|---|---|---|\n" +
		"| `-a` | string | listen on a \\| b |\n" +
		"| `-dev` | bool | dev mode |\n" +
		"prose | `-x` |\n"
	got, err := ParseTable(md)
	if err != nil {
		t.Fatal(err)
	}
	want := []TableRow{
		{Name: "a", Cells: []string{"string", "listen on a | b"}},
		{Name: "dev", Cells: []string{"bool", "dev mode"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseTable = %+v; want %+v", got, want)
	}
	for _, bad := range []string{"| `-a`|", "| `-` | x |", "| `-a b` | x |", "| `-a` |"} {
		if rows, err := ParseTable(bad); err == nil {
			t.Errorf("ParseTable(%q) = %+v, want an error", bad, rows)
		}
	}
}
