package doctest

import (
	"fmt"
	"regexp"
	"strings"
)

// Flag is one flag as the standard flag package's -h output lists it.
type Flag struct {
	Name    string
	Type    string // "" for booleans
	Default string // as printed, quotes included; "" when none is shown
	Usage   string
}

var (
	flagHead = regexp.MustCompile(`^  -(\S+)(?: (\S+))?$`)
	// A one-letter boolean flag's usage follows on the same line.
	flagHeadInline = regexp.MustCompile(`^  -(\S)\t(.*)$`)
	flagDefault    = regexp.MustCompile(` \(default (.*)\)$`)
)

// ParseHelp parses the flag list that flag.PrintDefaults writes, as
// printed by a binary's -h. Lines before the first flag (a usage line) are
// ignored; any other line that fits no flag is an error.
func ParseHelp(out string) ([]Flag, error) {
	var flags []Flag
	var usage []string
	flush := func() {
		if len(flags) == 0 {
			return
		}
		f := &flags[len(flags)-1]
		f.Usage = strings.Join(append([]string{f.Usage}, usage...), " ")
		f.Usage = strings.TrimSpace(f.Usage)
		if m := flagDefault.FindStringSubmatch(f.Usage); m != nil {
			f.Default = m[1]
			f.Usage = strings.TrimSuffix(f.Usage, m[0])
		}
		usage = nil
	}
	for i, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		switch {
		case flagHeadInline.MatchString(line):
			flush()
			m := flagHeadInline.FindStringSubmatch(line)
			flags = append(flags, Flag{Name: m[1], Usage: m[2]})
		case flagHead.MatchString(line):
			flush()
			m := flagHead.FindStringSubmatch(line)
			flags = append(flags, Flag{Name: m[1], Type: m[2]})
		case strings.HasPrefix(line, "    \t") && len(flags) > 0:
			usage = append(usage, strings.TrimSpace(line))
		case len(flags) == 0:
			// Usage line ("Usage of derper:") or other preamble.
		default:
			return nil, fmt.Errorf("line %d of -h output: unexpected %q", i+1, line)
		}
	}
	flush()
	return flags, nil
}

// TableRow is one row of a generated Markdown flag table, as written
// between the markers of a section: the flag's name (without the dash),
// then its cells in order, unescaped and with the backticks of the first
// cell removed.
type TableRow struct {
	Name  string
	Cells []string // every cell after the flag's own
}

// ParseTable reads the rows of the flag tables in md: every line that
// starts with "| `-". Other lines (headers, prose) are skipped; a flag row
// whose cells cannot be split is an error.
func ParseTable(md string) ([]TableRow, error) {
	var rows []TableRow
	for i, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "| `-") {
			continue
		}
		cells, err := splitRow(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(cells[0], "`-"), "`")
		if name == "" || strings.ContainsAny(name, "` ") {
			return nil, fmt.Errorf("line %d: bad flag cell %q", i+1, cells[0])
		}
		rows = append(rows, TableRow{Name: name, Cells: cells[1:]})
	}
	return rows, nil
}

// splitRow splits "| a | b \\| c |" into its cells, honouring escaped bars.
func splitRow(line string) ([]string, error) {
	if !strings.HasPrefix(line, "| ") || !strings.HasSuffix(line, " |") || len(line) < 4 {
		return nil, fmt.Errorf("not a table row: %q", line)
	}
	inner := line[2 : len(line)-2]
	var cells []string
	var cur strings.Builder
	for i := 0; i < len(inner); i++ {
		switch {
		case inner[i] == '\\' && i+1 < len(inner) && inner[i+1] == '|':
			cur.WriteByte('|')
			i++
		case strings.HasPrefix(inner[i:], " | "):
			cells = append(cells, cur.String())
			cur.Reset()
			i += 2
		default:
			cur.WriteByte(inner[i])
		}
	}
	cells = append(cells, cur.String())
	if len(cells) < 2 {
		return nil, fmt.Errorf("one cell only: %q", line)
	}
	return cells, nil
}

// Section markers around generated text in a Markdown file.
func beginMarker(name string) string {
	return "<!-- BEGIN " + name + " (generated: run `make docs` to update) -->"
}

func endMarker(name string) string { return "<!-- END " + name + " -->" }

// Section returns the text between the named section's markers.
func Section(doc, name string) (string, error) {
	_, after, ok := strings.Cut(doc, beginMarker(name)+"\n")
	if !ok {
		return "", fmt.Errorf("no %q line", beginMarker(name))
	}
	body, _, ok := strings.Cut(after, endMarker(name))
	if !ok {
		return "", fmt.Errorf("no %q line", endMarker(name))
	}
	return body, nil
}

// ReplaceSection returns doc with the named section's body replaced.
func ReplaceSection(doc, name, body string) (string, error) {
	old, err := Section(doc, name)
	if err != nil {
		return "", err
	}
	begin := beginMarker(name) + "\n"
	return strings.Replace(doc, begin+old+endMarker(name), begin+body+endMarker(name), 1), nil
}
