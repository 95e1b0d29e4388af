package main

import (
	"os/exec"
	"strings"
	"testing"
)

// allowedModules are the modules derpprobe may link: the chosen
// dependencies and what client_golang itself needs.
var allowedModules = map[string]bool{
	"github.com/openderp/openderp":        true,
	"golang.org/x/crypto":                 true,
	"golang.org/x/sys":                    true,
	"golang.org/x/net":                    true,
	"golang.org/x/time":                   true,
	"github.com/coder/websocket":          true,
	"github.com/prometheus/client_golang": true,
	// client_golang's own dependencies
	"github.com/prometheus/client_model": true,
	"github.com/prometheus/common":       true,
	"github.com/prometheus/procfs":       true,
	"github.com/beorn7/perks":            true,
	"github.com/cespare/xxhash/v2":       true,
	"github.com/munnerz/goautoneg":       true,
	"google.golang.org/protobuf":         true,
}

func TestLinkedModules(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", "-f", "{{if .Module}}{{.Module.Path}}{{end}}", ".").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	for _, m := range strings.Fields(string(out)) {
		if !allowedModules[m] {
			t.Errorf("derpprobe links unexpected module %s", m)
		}
	}
}
