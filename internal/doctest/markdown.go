package doctest

import (
	"fmt"
	"strings"
)

// Marker opens the HTML comment that marks a runnable block.
const Marker = "<!-- doctest"

// Block is a runnable fenced code block of a Markdown file.
type Block struct {
	Line int               // 1-based line of the opening fence
	Lang string            // info string of the fence, such as "sh"
	Opts map[string]string // marker options; bare words map to ""
	Text string            // the block's content, ending in a newline
}

// knownOpts lists the options a marker may carry.
var knownOpts = map[string]bool{
	"background": true, "ready": true, "expect": true, "fail": true,
	"dir": true, "needs": true, "timeout": true,
}

// Extract returns the runnable blocks of a Markdown document. A marker
// that is not followed by a fenced block, an unknown option or an
// unclosed fence is an error naming the line.
func Extract(doc string) ([]Block, error) {
	var (
		blocks  []Block
		pending map[string]string // options of a marker awaiting its fence
		pendAt  int
		fence   string // closing fence of the block being read; "" outside
		cur     *Block // the runnable block being read, if any
		text    strings.Builder
	)
	for i, line := range strings.Split(strings.TrimSuffix(doc, "\n"), "\n") {
		n := i + 1
		trimmed := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, "`~") == "" {
				if cur != nil {
					cur.Text = text.String()
					blocks = append(blocks, *cur)
					cur = nil
				}
				fence = ""
				continue
			}
			if cur != nil {
				text.WriteString(line)
				text.WriteByte('\n')
			}
			continue
		}
		if f, lang, ok := openingFence(trimmed); ok {
			fence = f
			if pending != nil {
				cur = &Block{Line: n, Lang: lang, Opts: pending}
				text.Reset()
				pending = nil
			}
			continue
		}
		if pending != nil {
			return nil, fmt.Errorf("line %d: doctest marker not followed by a fenced block", pendAt)
		}
		if strings.HasPrefix(trimmed, Marker) {
			opts, err := parseMarker(trimmed)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			pending, pendAt = opts, n
		}
	}
	if fence != "" {
		return nil, fmt.Errorf("unclosed fence at end of document")
	}
	if pending != nil {
		return nil, fmt.Errorf("line %d: doctest marker not followed by a fenced block", pendAt)
	}
	return blocks, nil
}

// openingFence reports whether line opens a fenced block, returning the
// string that closes it and the info string's first word.
func openingFence(line string) (fence, lang string, ok bool) {
	for _, c := range []string{"```", "~~~"} {
		if strings.HasPrefix(line, c) {
			i := 0
			for i < len(line) && line[i] == c[0] {
				i++
			}
			info := strings.TrimSpace(line[i:])
			if c[0] == '`' && strings.Contains(info, "`") {
				return "", "", false
			}
			lang, _, _ = strings.Cut(info, " ")
			return line[:i], lang, true
		}
	}
	return "", "", false
}

// parseMarker parses `<!-- doctest opt key=value key="quoted value" -->`.
func parseMarker(s string) (map[string]string, error) {
	body, ok := strings.CutSuffix(strings.TrimPrefix(s, Marker), "-->")
	if !ok {
		return nil, fmt.Errorf("doctest marker must end with --> on the same line")
	}
	if body != "" && body[0] != ' ' {
		return nil, fmt.Errorf("malformed doctest marker %q", s)
	}
	opts := map[string]string{}
	for body = strings.TrimSpace(body); body != ""; body = strings.TrimSpace(body) {
		end := strings.IndexAny(body, " =")
		if end < 0 {
			end = len(body)
		}
		name := body[:end]
		body = body[end:]
		val := ""
		if strings.HasPrefix(body, "=") {
			body = body[1:]
			if strings.HasPrefix(body, `"`) {
				q := strings.IndexByte(body[1:], '"')
				if q < 0 {
					return nil, fmt.Errorf("unterminated quote in doctest option %q", name)
				}
				val, body = body[1:1+q], body[2+q:]
			} else {
				sp := strings.IndexByte(body, ' ')
				if sp < 0 {
					sp = len(body)
				}
				val, body = body[:sp], body[sp:]
			}
		}
		if !knownOpts[name] {
			return nil, fmt.Errorf("unknown doctest option %q", name)
		}
		opts[name] = val
	}
	return opts, nil
}
