package main

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

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
