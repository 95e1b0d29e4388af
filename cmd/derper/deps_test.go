package main

import (
	"os/exec"
	"strings"
	"testing"
)

// allowedModulePrefixes are the import path prefixes derper may link
// besides the standard library: the chosen dependencies and what they
// pull in themselves.
var allowedModulePrefixes = []string{
	"github.com/openderp/openderp/",
	"golang.org/x/crypto/", "golang.org/x/sys/", "golang.org/x/net/", "golang.org/x/text/", "golang.org/x/time/",
	"github.com/coder/websocket",
	// github.com/prometheus/client_golang and its own dependencies.
	"github.com/prometheus/", "github.com/beorn7/perks/", "github.com/cespare/xxhash/",
	"github.com/munnerz/goautoneg", "google.golang.org/protobuf/",
	// The Tailscale API client (a module of its own, not tailscale.com)
	// and its dependencies, for -verify-clients-tailnet-oauth-file.
	"tailscale.com/client/tailscale/v2", "github.com/tailscale/hujson", "golang.org/x/oauth2",
	// PROXY protocol headers (-proxy-protocol-from).
	"github.com/pires/go-proxyproto",
}

// TestDependencies fails when the binary starts linking a package outside
// the chosen dependencies, so new ones are added deliberately.
func TestDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		ok := false
		for _, a := range allowedModulePrefixes {
			if strings.HasPrefix(p, a) {
				ok = true
				break
			}
		}
		if !ok {
			t.Errorf("derper links unexpected package %s", p)
		}
	}
}
