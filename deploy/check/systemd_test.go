package check

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// unitDirectives parses a systemd unit file into section -> key -> values.
func unitDirectives(t *testing.T, b []byte) map[string]map[string][]string {
	t.Helper()
	out := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			if out[section] == nil {
				out[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("line %d: not a directive: %q", n, line)
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	return out
}

// TestSystemdUnit checks the hardening the unit promises, that its
// command line uses only flags derper has, and, where systemd-analyze is
// installed, that systemd accepts the unit and its mesh drop-in without a
// warning and rates its exposure as low.
func TestSystemdUnit(t *testing.T) {
	unit := readDeploy(t, "systemd/derper.service")
	dropIn := readDeploy(t, "systemd/derper-mesh.conf")
	d := unitDirectives(t, unit)["Service"]
	for k, want := range map[string]string{
		"DynamicUser":           "yes",
		"StateDirectory":        "derper",
		"AmbientCapabilities":   "CAP_NET_BIND_SERVICE",
		"CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
		"NoNewPrivileges":       "yes",
		"ProtectSystem":         "strict",
		"PrivateTmp":            "yes",
	} {
		if got := d[k]; len(got) != 1 || got[0] != want {
			t.Errorf("[Service] %s = %q; want %q", k, got, want)
		}
	}
	for name, b := range map[string][]byte{"derper.service": unit, "derper-mesh.conf": dropIn} {
		for _, cmd := range unitDirectives(t, b)["Service"]["ExecStart"] {
			if cmd == "" {
				continue // resets the list in a drop-in
			}
			args := strings.Fields(cmd)
			if args[0] != "/usr/local/bin/derper" {
				t.Errorf("%s: ExecStart runs %s", name, args[0])
			}
			checkArgs(t, name, "derper", args[1:])
		}
	}

	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed; the unit's syntax is not verified (apt-get install systemd)")
	}
	// systemd-analyze also checks that ExecStart's binary exists, so point
	// the copies at the derper built from this checkout.
	dir := t.TempDir()
	derper := filepath.Join(binaries(t), "derper")
	fix := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte("/usr/local/bin/derper"), []byte(derper)) }
	if err := os.MkdirAll(filepath.Join(dir, "derper.service.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "derper.service"), fix(unit), 0o644)
	os.WriteFile(filepath.Join(dir, "derper.service.d", "mesh.conf"), fix(dropIn), 0o644)

	cmd := command(t, 2*time.Minute, "systemd-analyze", "verify", "--man=no", "./derper.service")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	cmd = command(t, 2*time.Minute, "systemd-analyze", "security", "--offline=yes", "./derper.service")
	cmd.Dir = dir
	out, _ = cmd.CombinedOutput() // exits non-zero by design; the score is what counts
	m := regexp.MustCompile(`Overall exposure level for derper.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Logf("systemd-analyze security --offline is not supported here:\n%s", out)
		return
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("systemd-analyze security: exposure %.1f", score)
	if score > 2.5 {
		t.Errorf("systemd exposure level %.1f; want at most 2.5 (hardening lost?)\n%s", score, out)
	}
}
