package check

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/openderp/openderp/internal/doctest"
	"github.com/openderp/openderp/internal/leakcheck"
)

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	if code == 0 {
		if leaked := leakcheck.Wait(5*time.Second, "openderp/deploy/check."); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines left behind:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// repoRoot is the relay module's root; deployDir is deploy/.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func deployFile(t *testing.T, rel string) string {
	t.Helper()
	return filepath.Join(repoRoot(t), "deploy", rel)
}

func readDeploy(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(deployFile(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// binaries builds derper, derpprobe and stunc from the checkout once.
func binaries(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "deploycheck-bin-")
		if binErr != nil {
			return
		}
		cmd := command(t, 10*time.Minute, "go", "build", "-o", binDir+string(filepath.Separator), "./cmd/...")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/...: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

// knownFlags returns the flags that the named binary's -h lists.
func knownFlags(t *testing.T, name string) map[string]bool {
	t.Helper()
	out, _ := command(t, time.Minute, filepath.Join(binaries(t), name), "-h").CombinedOutput()
	flags, err := doctest.ParseHelp(string(out))
	if err != nil {
		t.Fatalf("%s -h: %v", name, err)
	}
	m := map[string]bool{}
	for _, f := range flags {
		m[f.Name] = true
	}
	return m
}

var flagArg = regexp.MustCompile(`^--?([A-Za-z0-9][A-Za-z0-9-]*)(=.*)?$`)

// checkArgs fails for every -flag of args that the binary does not know.
// Values of flags given as separate arguments are skipped.
func checkArgs(t *testing.T, where, binary string, args []string) {
	t.Helper()
	known := knownFlags(t, binary)
	for i := 0; i < len(args); i++ {
		m := flagArg.FindStringSubmatch(args[i])
		if m == nil {
			continue
		}
		if !known[m[1]] {
			t.Errorf("%s: %s has no flag -%s", where, binary, m[1])
			continue
		}
		if m[2] == "" && i+1 < len(args) && !flagArg.MatchString(args[i+1]) {
			i++ // the flag's value
		}
	}
}

// flagValue returns the value of -name in args, in either form.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		m := flagArg.FindStringSubmatch(a)
		if m == nil || m[1] != name {
			continue
		}
		if m[2] != "" {
			return m[2][1:], true
		}
		if i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

// command is exec.Command bounded in time: the process is killed after
// limit, and a grandchild holding its output open cannot stall the test.
func command(t *testing.T, limit time.Duration, name string, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}
