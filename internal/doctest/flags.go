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

// FlagTable renders flags as a Markdown table.
func FlagTable(flags []Flag) string {
	var b strings.Builder
	b.WriteString("| Flag | Type | Default | Meaning |\n|---|---|---|---|\n")
	for _, f := range flags {
		typ := f.Type
		if typ == "" {
			typ = "bool"
		}
		def := f.Default
		switch {
		case def == "" && typ == "bool":
			def = "false"
		case def == "":
			def = "none"
		}
		fmt.Fprintf(&b, "| `-%s` | %s | %s | %s |\n", f.Name, typ, code(def), escapeCell(f.Usage))
	}
	return b.String()
}

func code(s string) string {
	if s == "none" {
		return s
	}
	return "`" + s + "`"
}

func escapeCell(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
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
