package doctest

import (
	"regexp"
	"strings"
)

var (
	mdLink    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	mdHeading = regexp.MustCompile(`(?m)^#{1,6} +(.+?)\s*$`)
	mdAnchor  = regexp.MustCompile(`\{#([A-Za-z0-9_-]+)\}\s*$`)
	slugDrop  = regexp.MustCompile(`[^a-z0-9 _-]`)
)

// Links returns the targets of the inline links of a Markdown document
// that point into the repository: no scheme, not a bare #fragment of the
// page itself. Fenced code is skipped.
func Links(doc string) []string {
	var out []string
	inFence := false
	for _, line := range strings.Split(doc, "\n") {
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~") {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			out = append(out, target)
		}
	}
	return out
}

// Anchors returns the fragment names a Markdown document's headings
// define: an explicit {#id}, or the heading's text in GitHub's slug form
// (lower case, punctuation dropped, spaces as hyphens).
func Anchors(doc string) map[string]bool {
	a := map[string]bool{}
	for _, m := range mdHeading.FindAllStringSubmatch(doc, -1) {
		h := m[1]
		if id := mdAnchor.FindStringSubmatch(h); id != nil {
			a[id[1]] = true
			h = strings.TrimSpace(strings.TrimSuffix(h, id[0]))
		}
		h = strings.NewReplacer("`", "", "*", "").Replace(h)
		slug := strings.ReplaceAll(slugDrop.ReplaceAllString(strings.ToLower(h), ""), " ", "-")
		a[slug] = true
	}
	return a
}
