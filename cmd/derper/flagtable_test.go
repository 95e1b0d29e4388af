package main

import (
	"bytes"
	"context"
	"flag"
	"math"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"
)

// refFlag is one flag of today's reference derper (tailscale.com v1.104.7,
// LATEST.md §12.1), or one of openderp's own, as "derper -h" prints it.
type refFlag struct {
	name   string
	typ    string // type word printed by -h; "" for booleans
	def    string // default as printed by -h; "" when -h prints none
	origin string // "v1.76.3", "Tailscale vX.Y" (added later) or "openderp"
}

// Test defaults for the two machine-dependent flags.
const (
	testCertDir = "/cache/tailscale/derper-certs"
	testPSKFile = "/home/derp/keys/derp-mesh.key"
)

// goldenFlags is every flag derper has: the reference's, with their types
// and defaults, and openderp's additions.
var goldenFlags = []refFlag{
	{"a", "string", `":443"`, "v1.76.3"},
	{"accept-connection-burst", "int", "9223372036854775807", "v1.76.3"},
	{"accept-connection-limit", "float", "+Inf", "v1.76.3"},
	{"acme-directory-url", "string", `"https://acme-v02.api.letsencrypt.org/directory"`, "openderp"},
	{"acme-eab-key", "string", "", "Tailscale v1.94"},
	{"acme-eab-kid", "string", "", "Tailscale v1.94"},
	{"acme-email", "string", "", "Tailscale v1.94"},
	{"acme-ip-certs", "", "", "Tailscale v1.102"},
	{"bootstrap-dns-names", "string", "", "v1.76.3"},
	{"c", "string", "", "v1.76.3"},
	{"certdir", "string", `"` + testCertDir + `"`, "v1.76.3"},
	{"certmode", "string", `"letsencrypt"`, "v1.76.3 (gcp: Tailscale v1.94)"},
	{"derp", "", "true", "v1.76.3"},
	{"dev", "", "", "v1.76.3 (mesh key from the environment: Tailscale v1.82)"},
	{"disallow-app-names", "string", "", "Tailscale v1.104"},
	{"handshake-timeout", "duration", "10s", "openderp"},
	{"home", "string", "", "Tailscale v1.82"},
	{"hostname", "string", `"derp.tailscale.com"`, "v1.76.3 (IP literals: Tailscale v1.78/v1.82/v1.102)"},
	{"http-port", "int", "80", "v1.76.3"},
	{"log-format", "string", `"text"`, "openderp"},
	{"log-level", "string", `"info"`, "openderp"},
	{"max-conns", "int", "", "openderp"},
	{"max-conns-per-ip", "int", "", "openderp"},
	{"max-conns-per-key", "int", "100", "openderp"},
	{"max-header-bytes", "int", "16384", "openderp"},
	{"max-pending-conns", "int", "20000", "openderp"},
	{"max-pending-conns-per-ip", "int", "512", "openderp"},
	{"mesh-psk-file", "string", `"` + testPSKFile + `"`, "v1.76.3 (exactly 64 hex digits: Tailscale v1.86)"},
	{"mesh-with", "string", "", "v1.76.3 (host/dialhost: Tailscale v1.80)"},
	{"metrics-addr", "string", "", "openderp"},
	{"proxy-protocol-from", "string", "", "openderp"},
	{"rate-config", "string", "", "Tailscale v1.98"},
	{"read-header-timeout", "duration", "10s", "openderp"},
	{"shutdown-grace", "duration", "", "openderp"},
	{"socket", "string", "", "Tailscale v1.82"},
	{"stun", "", "true", "v1.76.3"},
	{"stun-port", "int", "3478", "v1.76.3"},
	{"stun-reflect-burst", "int", "4800", "openderp"},
	{"stun-reflect-limit", "int", "1200", "openderp"},
	{"tcp-keepalive-time", "duration", "10m0s", "v1.76.3"},
	{"tcp-user-timeout", "duration", "15s", "v1.76.3"},
	{"tcp-write-timeout", "duration", "2s", "Tailscale v1.80"},
	{"tls-min-version", "string", `"1.2"`, "openderp"},
	{"unpublished-bootstrap-dns-names", "string", "", "v1.76.3"},
	{"verify-client-url", "string", "", "v1.76.3"},
	{"verify-client-url-fail-open", "", "true", "v1.76.3"},
	{"verify-clients", "", "", "v1.76.3"},
	{"verify-clients-file", "string", "", "openderp"},
	{"verify-clients-tailnet", "string", `"-"`, "openderp"},
	{"verify-clients-tailnet-api-url", "string", `"https://api.tailscale.com"`, "openderp"},
	{"verify-clients-tailnet-fail-open", "", "", "openderp"},
	{"verify-clients-tailnet-oauth-file", "string", "", "openderp"},
	{"verify-clients-tailnet-refresh", "duration", "1m0s", "openderp"},
	{"version", "", "", "v1.76.3"},
}

// absentFlags are the reference's flags left out on purpose; see
// docs/compat.md#derper-internal-flags.
var absentFlags = []string{"ace", "secrets-cache-dir", "secrets-path-prefix", "secrets-url"}

var (
	helpHead    = regexp.MustCompile(`(?m)^  -(\S+)(?: (\w+))?$`)
	helpDefault = regexp.MustCompile(`\(default (.*)\)\n`)
)

// parseHelp reads flag names, type words and printed defaults from the
// output of flag.PrintDefaults.
func parseHelp(out string) map[string][2]string {
	idx := helpHead.FindAllStringSubmatchIndex(out, -1)
	got := map[string][2]string{}
	for i, m := range idx {
		name := out[m[2]:m[3]]
		typ := ""
		if m[4] >= 0 {
			typ = out[m[4]:m[5]]
		}
		end := len(out)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		d := ""
		if dm := helpDefault.FindStringSubmatch(out[m[1]:end]); dm != nil {
			d = dm[1]
		}
		got[name] = [2]string{typ, d}
	}
	return got
}

// checkHelp compares parsed -h output with goldenFlags. With machine set,
// the machine-dependent defaults are not compared.
func checkHelp(t *testing.T, got map[string][2]string, machine bool) {
	t.Helper()
	for _, f := range goldenFlags {
		g, ok := got[f.name]
		if !ok {
			t.Errorf("-%s missing from -h", f.name)
			continue
		}
		want := [2]string{f.typ, f.def}
		if machine && (f.name == "certdir" || f.name == "mesh-psk-file") {
			g[1], want[1] = "", ""
		}
		if g != want {
			t.Errorf("-%s: type/default = %q, want %q", f.name, g, want)
		}
	}
	known := map[string]bool{}
	for _, f := range goldenFlags {
		known[f.name] = true
	}
	for name := range got {
		if !known[name] {
			t.Errorf("-%s is not in the golden list (add it, with its origin, to goldenFlags, then run make docs)", name)
		}
	}
	for _, name := range absentFlags {
		if _, ok := got[name]; ok {
			t.Errorf("-%s is registered but documented as deliberately absent", name)
		}
	}
}

func testFlagSet() (*flag.FlagSet, *options) {
	fs := flag.NewFlagSet("derper", flag.ContinueOnError)
	o := registerFlags(fs, flagDefaults{certDir: testCertDir, meshPSKFile: testPSKFile})
	return fs, o
}

// TestFlagDefaults pins every flag's name, type and default, as listed by
// -h, against the golden list.
func TestFlagDefaults(t *testing.T) {
	fs, o := testFlagSet()
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	fs.PrintDefaults()
	checkHelp(t, parseHelp(buf.String()), false)

	if o.acceptConnLimit != math.Inf(1) || o.acceptConnBurst != math.MaxInt || o.tcpWriteTimeout != 2*time.Second ||
		o.tcpKeepAlive != 10*time.Minute || !o.runDERP || !o.runSTUN || !o.verifyClientFailOpen {
		t.Errorf("parsed defaults wrong: %+v", o)
	}
}

// TestE2EHelp holds the real binary's -h against the golden list.
func TestE2EHelp(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-h")
	cmd.Env = append(os.Environ(), runAsDerperEnv+"=1")
	out, _ := cmd.CombinedOutput() // -h exits with status 2, as the flag package does
	got := parseHelp(string(out))
	if len(got) < 20 {
		t.Fatalf("-h output: %s", out)
	}
	checkHelp(t, got, true)
}
