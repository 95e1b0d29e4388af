package latest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openderp/openderp/internal/leakcheck"

	"github.com/openderp/openderp/internal/loopguard"
)

// The test certificate, made once: the reference's TLS and WebSocket
// dialers verify against the system roots only, so TestMain adds it to
// them through SSL_CERT_FILE before anything loads them.
var (
	sharedCert tls.Certificate
	sharedPool *x509.CertPool
)

// childMarker is set in the environment of the re-executed test binary.
const childMarker = "OPENDERP_INTEROP_CHILD"

// childEnv is what the tailscale packages must see when they initialise:
// some knobs are read once, at package init, so they cannot be set by a
// test. TestMain therefore runs the test binary again with them set.
var childEnv = []string{
	// Every packet between tailnet nodes crosses a DERP relay: magicsock
	// opens no UDP socket at all.
	"TS_DEBUG_ALWAYS_USE_DERP=true",
	// Nothing may leave loopback: no log upload, no port mapping probes
	// of the gateway, no local interface addresses as endpoints.
	"TS_NO_LOGS_NO_SUPPORT=true",
	"TS_DISABLE_PORTMAPPER=true",
	"TS_DEBUG_OMIT_LOCAL_ADDRS=true",
}

// proxyVars are dropped from the child's environment so that no HTTP
// client (the WebSocket dialer uses http.DefaultClient) goes through a
// proxy instead of straight to loopback.
var proxyVars = []string{"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"}

func TestMain(m *testing.M) {
	if os.Getenv(childMarker) == "" {
		os.Exit(reexec())
	}
	dir, err := setupChild()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if code == 0 {
		if leaked := leakcheck.Wait(5*time.Second, "github.com/openderp/openderp/"); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines left behind:\n%s\n", leaked)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// reexec runs this test binary again, with the same arguments and
// childEnv added, and returns its exit code.
func reexec() int {
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	env := []string{childMarker + "=1"}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, p := range proxyVars {
			drop = drop || strings.EqualFold(name, p)
		}
		if !drop {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, childEnv...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	dieWithParent(cmd)
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintf(os.Stderr, "re-running the test binary: %v\n", err)
		return 1
	}
	return 0
}

// setupChild prepares the re-executed process: the test certificate in
// the system roots and a resolver that refuses to leave loopback. It
// returns a temporary directory to remove at the end.
func setupChild() (string, error) {
	var err error
	sharedCert, sharedPool, err = makeCert()
	if err != nil {
		return "", fmt.Errorf("making the test certificate: %w", err)
	}
	dir, err := os.MkdirTemp("", "interop")
	if err != nil {
		return "", fmt.Errorf("making a temporary directory: %w", err)
	}
	f := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: sharedCert.Certificate[0]}), 0o600); err != nil {
		return dir, fmt.Errorf("writing the test certificate: %w", err)
	}
	os.Setenv("SSL_CERT_FILE", f)
	loopguard.GuardResolver()
	return dir, nil
}
