package doctest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLinks checks that every relative link of README.md, docs/*.md and
// deploy/README.md points at a file that exists and, for #fragments into
// Markdown, at a heading that exists.
func TestLinks(t *testing.T) {
	root := repoRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files = append(files, filepath.Join(root, "README.md"), filepath.Join(root, "deploy", "README.md"))
	for _, path := range files {
		rel, _ := filepath.Rel(root, path)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, link := range Links(string(b)) {
			file, frag, _ := strings.Cut(link, "#")
			target := path
			if file != "" {
				target = filepath.Join(filepath.Dir(path), file)
			}
			tb, err := os.ReadFile(target)
			if err != nil {
				if fi, serr := os.Stat(target); serr == nil && fi.IsDir() {
					continue // a directory link
				}
				t.Errorf("%s: link %q: %v", rel, link, err)
				continue
			}
			if frag != "" && strings.HasSuffix(target, ".md") && !Anchors(string(tb))[frag] {
				t.Errorf("%s: link %q: no heading #%s in %s", rel, link, frag, filepath.Base(target))
			}
		}
	}
}

func TestAnchors(t *testing.T) {
	a := Anchors("# Operating an openderp relay\n## Mesh key comparison {#mesh-key}\n### 1. DNS\n## IP-only with a `pinned` certificate\n")
	for _, want := range []string{"operating-an-openderp-relay", "mesh-key", "mesh-key-comparison", "1-dns", "ip-only-with-a-pinned-certificate"} {
		if !a[want] {
			t.Errorf("Anchors lacks %q: %v", want, a)
		}
	}
	if got := Links("see [a](docs/x.md#y) and [b](https://e.x/) ```\n```\n[c](z)\n```\n"); len(got) != 1 || got[0] != "docs/x.md#y" {
		t.Errorf("Links = %q", got)
	}
}
