package admission

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/openderp/openderp/key"
)

func TestParseKeyList(t *testing.T) {
	a, b := key.NewNode().Public(), key.NewNode().Public()
	tests := []struct {
		name     string
		text     string
		want     []key.NodePublic
		wantLine int // 0: no error
	}{
		{"empty", "", nil, 0},
		{"comments and blanks", "# header\n\n   \n\t# indented\n", nil, 0},
		{"one key", a.String(), []key.NodePublic{a}, 0},
		{"two keys, CRLF, spaces", " " + a.String() + "\r\n\t" + b.String() + "  \r\n", []key.NodePublic{a, b}, 0},
		{"trailing comment", a.String() + "  # alice's laptop\n" + b.String() + "#bob\n", []key.NodePublic{a, b}, 0},
		{"duplicate", a.String() + "\n" + a.String() + "\n", []key.NodePublic{a}, 0},
		{"upper-case hex", "nodekey:" + strings.ToUpper(a.UntypedHexString()), []key.NodePublic{a}, 0},
		{"bare hex", a.UntypedHexString(), nil, 1},
		{"wrong prefix", "mkey:" + a.UntypedHexString(), nil, 1},
		{"short", "# ok\n" + a.String()[:40], nil, 2},
		{"two keys on a line", a.String() + " " + b.String(), nil, 1},
		{"garbage after good lines", a.String() + "\n\nhello\n", nil, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKeyList([]byte(tt.text))
			if tt.wantLine != 0 {
				var kle *KeyListError
				if !errors.As(err, &kle) || kle.Line != tt.wantLine {
					t.Fatalf("err = %v, want a KeyListError on line %d", err, tt.wantLine)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d keys, want %d", len(got), len(tt.want))
			}
			for _, k := range tt.want {
				if _, ok := got[k]; !ok {
					t.Errorf("missing %v", k)
				}
			}
		})
	}
}

func TestKeyListErrorShortensText(t *testing.T) {
	_, err := ParseKeyList(bytes.Repeat([]byte("x"), 10000))
	if err == nil || len(err.Error()) > 300 {
		t.Fatalf("err = %.400v", err)
	}
}

// FuzzParseKeyList checks that any text either fails on a line that
// exists, or yields keys that each appear in the text and that survive
// writing the list out and reading it back.
func FuzzParseKeyList(f *testing.F) {
	a := key.NewNode().Public()
	f.Add([]byte(""))
	f.Add([]byte("# c\n" + a.String() + " # x\n\n"))
	f.Add([]byte(a.String() + "\r\n" + strings.ToUpper(a.String()) + "\n"))
	f.Add([]byte("nodekey:zz\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := ParseKeyList(b)
		if err != nil {
			var kle *KeyListError
			if !errors.As(err, &kle) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if lines := bytes.Count(b, []byte{'\n'}) + 1; kle.Line < 1 || kle.Line > lines {
				t.Fatalf("error on line %d of %d", kle.Line, lines)
			}
			return
		}
		if len(keys) > bytes.Count(b, []byte{'\n'})+1 {
			t.Fatalf("%d keys from %d lines", len(keys), bytes.Count(b, []byte{'\n'})+1)
		}
		lower := bytes.ToLower(b)
		var out bytes.Buffer
		for k := range keys {
			if !bytes.Contains(lower, []byte(k.UntypedHexString())) {
				t.Fatalf("key %v not in the text", k)
			}
			out.WriteString(k.String() + "\n")
		}
		again, err := ParseKeyList(out.Bytes())
		if err != nil || len(again) != len(keys) {
			t.Fatalf("round trip: %d keys, %v; want %d", len(again), err, len(keys))
		}
		for k := range keys {
			if _, ok := again[k]; !ok {
				t.Fatalf("round trip lost %v", k)
			}
		}
	})
}
