package doctest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeShape holds README.md to what a newcomer needs: a set-up
// section with exactly two commands, a quick start whose commands all run
// under make test, and a table that lists every page of docs/ once.
func TestReadmeShape(t *testing.T) {
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)

	setup := mdSection(readme, "## Set-up")
	_, block, ok := strings.Cut(setup, "```sh\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("README.md: no sh block under ## Set-up")
	}
	var cmds []string
	for _, line := range strings.Split(block, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			cmds = append(cmds, line)
		}
	}
	if len(cmds) != 2 {
		t.Errorf("README.md set-up has %d commands, want exactly two: %q", len(cmds), cmds)
	}

	quick := mdSection(readme, "## Quick start (60 seconds)")
	if quick == "" {
		t.Error("README.md: no \"## Quick start (60 seconds)\" section")
	}
	blocks, err := Extract(quick)
	if err != nil {
		t.Fatalf("README.md quick start: %v", err)
	}
	if fences := strings.Count(quick, "```sh"); len(blocks) < 3 || len(blocks) != fences {
		t.Errorf("README.md quick start: %d sh blocks, %d marked runnable; every one must be", fences, len(blocks))
	}

	table := mdSection(readme, "## Documentation")
	link := regexp.MustCompile(`^\| \[[^]]+\]\(([^)]+)\)`)
	listed := map[string]int{}
	for _, line := range strings.Split(table, "\n") {
		if m := link.FindStringSubmatch(line); m != nil {
			listed[m[1]]++
		}
	}
	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append(pages, filepath.Join(root, "deploy")+"/") {
		rel, _ := filepath.Rel(root, p)
		if strings.HasSuffix(p, "/") {
			rel += "/"
		}
		if listed[rel] != 1 {
			t.Errorf("README.md documentation table lists %s %d times, want once", rel, listed[rel])
		}
		delete(listed, rel)
	}
	for l := range listed {
		t.Errorf("README.md documentation table links %s, which is not a page of docs/", l)
	}
}

// mdSection returns the text after the heading line head up to the next
// heading of the same or a higher level, or "" if there is no such heading.
func mdSection(doc, head string) string {
	_, after, ok := strings.Cut(doc, "\n"+head+"\n")
	if !ok {
		return ""
	}
	level := strings.Count(strings.Fields(head)[0], "#")
	lines := strings.Split(after, "\n")
	fenced := false
	for i, line := range lines {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		if f := strings.Fields(line); !fenced && len(f) > 0 && strings.Trim(f[0], "#") == "" && len(f[0]) <= level {
			return strings.Join(lines[:i], "\n")
		}
	}
	return after
}
