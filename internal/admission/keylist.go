package admission

import (
	"bytes"
	"fmt"

	"github.com/openderp/openderp/key"
)

// KeyListError reports a line of a key list that is neither blank, a
// comment nor a node public key.
type KeyListError struct {
	Line int    // 1-based
	Text string // the offending text, shortened
	Err  error  // why it did not parse
}

func (e *KeyListError) Error() string {
	return fmt.Sprintf("line %d: %q is not a node key (want nodekey:<64 hex digits>): %v", e.Line, e.Text, e.Err)
}

func (e *KeyListError) Unwrap() error { return e.Err }

// maxQuoted bounds how much of a bad line an error repeats.
const maxQuoted = 80

// ParseKeyList parses the text of a key list: one node public key per
// line in its "nodekey:" and 64 hex digits form. A '#' starts a comment
// that runs to the end of its line; blank lines and white space around a
// key are ignored, and a key may appear more than once. The first line
// holding anything else makes the whole list invalid. An empty list is
// valid and admits no one.
func ParseKeyList(b []byte) (map[key.NodePublic]struct{}, error) {
	keys := make(map[key.NodePublic]struct{})
	for n := 1; len(b) > 0; n++ {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		if i := bytes.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var k key.NodePublic
		if err := k.UnmarshalText(line); err != nil {
			text := string(line)
			if len(text) > maxQuoted {
				text = text[:maxQuoted] + "…"
			}
			return nil, &KeyListError{Line: n, Text: text, Err: err}
		}
		keys[k] = struct{}{}
	}
	return keys, nil
}
