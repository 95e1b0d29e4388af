package main

import (
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openderp/openderp/prober/probertest"
)

// runCommand runs derpprobe (this test binary in main mode) with args,
// trusting only ca, and returns its exit code and standard error.
func runCommand(t *testing.T, ca *probertest.CA, args ...string) (int, string) {
	certFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], args...)
	cmd.Env = append(os.Environ(), "DERPPROBE_TEST_MAIN=1", "SSL_CERT_FILE="+certFile, "SSL_CERT_DIR="+t.TempDir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stderr.String()
	}
	t.Fatalf("running derpprobe: %v", err)
	return 0, ""
}

func TestCommandOnce(t *testing.T) {
	ca := probertest.NewCA(t)
	for _, tt := range []struct {
		name     string
		withDead bool
		code     int
		bad      int
	}{
		{"healthy", false, 0, 0},
		{"node down", true, 1, 7},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mapURL := region(t, ca, tt.withDead)
			code, stderr := runCommand(t, ca, "-once", "-spread=false", "-derp-map", mapURL)
			good, bad := results(stderr)
			if code != tt.code || len(good) != 9 || len(bad) != tt.bad {
				t.Errorf("exit %d with %d good, %d bad lines; want exit %d, 9 good, %d bad\n%s",
					code, len(good), len(bad), tt.code, tt.bad, stderr)
			}
		})
	}
}

func TestCommandVersion(t *testing.T) {
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-version")
	cmd.Env = append(os.Environ(), "DERPPROBE_TEST_MAIN=1")
	out, err := cmd.Output()
	if err != nil || !strings.HasPrefix(string(out), "openderp derpprobe ") {
		t.Errorf("derpprobe -version = %q, %v", out, err)
	}
}
