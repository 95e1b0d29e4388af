package main

import "strings"

// parseAppNames splits the -disallow-app-names list. Unlike the
// reference, which keeps every comma-separated piece as it is, entries
// are trimmed and empty ones dropped, so that a trailing comma does not
// refuse every client that sends no AppName.
// See docs/compat.md#disallow-app-names.
func parseAppNames(list string) []string {
	var names []string
	for _, n := range strings.Split(list, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return names
}
