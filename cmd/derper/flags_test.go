package main

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// TestFlagDefaults pins every flag's name, type and default, as listed by
// -h, against the reference's table.
func TestFlagDefaults(t *testing.T) {
	fs := flag.NewFlagSet("derper", flag.ContinueOnError)
	o := registerFlags(fs, flagDefaults{certDir: "/cache/tailscale/derper-certs", meshPSKFile: "/home/derp/keys/derp-mesh.key"})
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	fs.PrintDefaults()

	// name -> (type as printed by -h, default as printed; "" means none)
	want := map[string][2]string{
		"a":                               {"string", `":443"`},
		"accept-connection-burst":         {"int", "9223372036854775807"},
		"accept-connection-limit":         {"float", "+Inf"},
		"acme-directory-url":              {"string", `"` + defaultACMEDirectory + `"`},
		"bootstrap-dns-names":             {"string", ""},
		"c":                               {"string", ""},
		"certdir":                         {"string", `"/cache/tailscale/derper-certs"`},
		"certmode":                        {"string", `"letsencrypt"`},
		"derp":                            {"", "true"},
		"dev":                             {"", ""},
		"hostname":                        {"string", `"derp.tailscale.com"`},
		"http-port":                       {"int", "80"},
		"mesh-psk-file":                   {"string", `"/home/derp/keys/derp-mesh.key"`},
		"mesh-with":                       {"string", ""},
		"stun":                            {"", "true"},
		"stun-port":                       {"int", "3478"},
		"tcp-keepalive-time":              {"duration", "10m0s"},
		"tcp-user-timeout":                {"duration", "15s"},
		"unpublished-bootstrap-dns-names": {"string", ""},
		"verify-client-url":               {"string", ""},
		"verify-client-url-fail-open":     {"", "true"},
		"verify-clients":                  {"", ""},
		"version":                         {"", ""},
		// openderp's admission limits (limits.go).
		"handshake-timeout":        {"duration", "10s"},
		"max-conns":                {"int", ""},
		"max-pending-conns":        {"int", "20000"},
		"max-conns-per-ip":         {"int", ""},
		"max-pending-conns-per-ip": {"int", "512"},
		"max-header-bytes":         {"int", "16384"},
		"read-header-timeout":      {"duration", "10s"},
	}
	head := regexp.MustCompile(`(?m)^  -(\S+)(?: (\w+))?$`)
	def := regexp.MustCompile(`\(default (.*)\)\n`)
	out := buf.String()
	idx := head.FindAllStringSubmatchIndex(out, -1)
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
		if dm := def.FindStringSubmatch(out[m[1]:end]); dm != nil {
			d = dm[1]
		}
		got[name] = [2]string{typ, d}
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("-%s missing from -h", name)
			continue
		}
		if g != w {
			t.Errorf("-%s: type/default = %q, want %q", name, g, w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected flag -%s", name)
		}
	}

	if o.acceptConnLimit != math.Inf(1) || o.acceptConnBurst != math.MaxInt ||
		o.tcpKeepAlive != 10*time.Minute || !o.runDERP || !o.runSTUN || !o.verifyClientFailOpen {
		t.Errorf("parsed defaults wrong: %+v", o)
	}
}

func TestFlagParse(t *testing.T) {
	fs := flag.NewFlagSet("derper", flag.ContinueOnError)
	o := registerFlags(fs, flagDefaults{})
	err := fs.Parse([]string{"-a=127.0.0.1:8443", "--derp=false", "-stun-port", "0", "-tcp-user-timeout=3s", "-accept-connection-limit=2.5"})
	if err != nil {
		t.Fatal(err)
	}
	if o.addr != "127.0.0.1:8443" || o.runDERP || o.stunPort != 0 || o.tcpUserTimeout != 3*time.Second || o.acceptConnLimit != 2.5 {
		t.Errorf("parsed: %+v", o)
	}
}

func TestMachineDefaults(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CACHE_HOME", filepath.Join(home, "cache"))
	d := machineDefaults()
	if want := filepath.Join(home, "cache", "tailscale", "derper-certs"); d.certDir != want {
		t.Errorf("certDir = %q, want %q", d.certDir, want)
	}
	if _, err := os.Stat("/home/derp/keys/derp-mesh.key"); err == nil {
		t.Skip("machine has /home/derp/keys/derp-mesh.key")
	}
	if d.meshPSKFile != "" {
		t.Errorf("meshPSKFile = %q, want empty", d.meshPSKFile)
	}
	p := filepath.Join(home, "keys", "derp-mesh.key")
	os.MkdirAll(filepath.Dir(p), 0o700)
	os.WriteFile(p, []byte("x"), 0o600)
	if d := machineDefaults(); d.meshPSKFile != p {
		t.Errorf("meshPSKFile = %q, want %q", d.meshPSKFile, p)
	}
}

// opts returns the default options.
func opts() *options {
	return registerFlags(flag.NewFlagSet("derper", flag.ContinueOnError), flagDefaults{})
}
