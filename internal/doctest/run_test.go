package doctest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// DocPorts are the ports the documentation uses in runnable blocks; each
// is replaced by a free loopback port when the blocks run.
var DocPorts = []int{3340, 3341, 3342, 3343, 3478, 3479, 3480, 8030, 9340, 9341}

var docPortRE = func() *regexp.Regexp {
	var alts []string
	for _, p := range DocPorts {
		alts = append(alts, strconv.Itoa(p))
	}
	return regexp.MustCompile(`\b(` + strings.Join(alts, "|") + `)\b`)
}()

// TestDocs runs every runnable block of README.md and docs/*.md.
func TestDocs(t *testing.T) {
	root := repoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{filepath.Join(root, "README.md")}, files...)
	for _, path := range files {
		rel, _ := filepath.Rel(root, path)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		blocks, err := Extract(string(b))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		if len(blocks) == 0 {
			continue
		}
		t.Run(rel, func(t *testing.T) { runFile(t, root, rel, blocks) })
	}
}

// bgProc is a block running in the background.
type bgProc struct {
	block Block
	cmd   *exec.Cmd
	log   string
	done  chan struct{} // closed once cmd has been waited for
	err   error         // Wait's result, read after done
}

func runFile(t *testing.T, root, rel string, blocks []Block) {
	bin := binaries(t)
	scratch := t.TempDir()
	ports := map[string]string{}
	used := map[int]bool{}
	for _, p := range DocPorts {
		fp := freePort(t)
		for used[fp] {
			fp = freePort(t)
		}
		used[fp] = true
		ports[strconv.Itoa(p)] = strconv.Itoa(fp)
	}
	subst := func(s string) string {
		return docPortRE.ReplaceAllStringFunc(s, func(p string) string { return ports[p] })
	}
	env := append(goEnv(t),
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"HOME="+scratch,
		"REPO="+root,
		"LANG=C",
		"DERPER_DEV_ADDR=127.0.0.1:"+ports["3340"],
		"DERPER_DEV_STUN_PORT="+ports["3478"],
	)
	if tmp := os.Getenv("TMPDIR"); tmp != "" {
		env = append(env, "TMPDIR="+tmp)
	}

	var bgs []*bgProc
	defer func() {
		for i := len(bgs) - 1; i >= 0; i-- {
			stopBackground(t, bgs[i])
		}
	}()
	showLogs := func() {
		for _, bg := range bgs {
			b, _ := os.ReadFile(bg.log)
			t.Logf("%s:%d (background) output:\n%s", rel, bg.block.Line, b)
		}
	}

	for _, blk := range blocks {
		where := fmt.Sprintf("%s:%d", rel, blk.Line)
		if skip := missing(blk.Opts["needs"]); skip != "" {
			t.Logf("%s: skipped: %s is not installed", where, skip)
			continue
		}
		for _, bg := range bgs {
			select {
			case <-bg.done:
				b, _ := os.ReadFile(bg.log)
				t.Fatalf("%s: background block %s:%d exited early (%v):\n%s", where, rel, bg.block.Line, bg.err, b)
			default:
			}
		}
		text := subst(blk.Text)
		dir := scratch
		if blk.Opts["dir"] == "repo" {
			dir = root
		} else if d, ok := blk.Opts["dir"]; ok {
			t.Fatalf("%s: dir=%q: only dir=repo is known", where, d)
		}
		script := filepath.Join(scratch, fmt.Sprintf("block-%d.sh", blk.Line))
		if err := os.WriteFile(script, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("bash", "-e", "-o", "pipefail", script)
		cmd.Dir, cmd.Env = dir, env
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}

		if _, ok := blk.Opts["background"]; ok {
			bg := startBackground(t, blk, cmd, filepath.Join(scratch, fmt.Sprintf("block-%d.log", blk.Line)))
			bgs = append(bgs, bg)
			if url, ok := blk.Opts["ready"]; ok {
				start := time.Now()
				if err := waitReady(bg, subst(url), 2*time.Minute); err != nil {
					showLogs()
					t.Fatalf("%s: %v", where, err)
				}
				t.Logf("%s: ready in %v", where, time.Since(start).Round(time.Millisecond))
			}
			continue
		}

		timeout := time.Minute
		if s, ok := blk.Opts["timeout"]; ok {
			d, err := time.ParseDuration(s)
			if err != nil {
				t.Fatalf("%s: timeout: %v", where, err)
			}
			timeout = d
		}
		start := time.Now()
		out, err := runForeground(cmd, timeout)
		t.Logf("%s: ran in %v", where, time.Since(start).Round(time.Millisecond))
		_, wantFail := blk.Opts["fail"]
		switch {
		case err != nil && !wantFail:
			showLogs()
			t.Fatalf("%s: %v\nblock:\n%s\noutput:\n%s", where, err, text, out)
		case err == nil && wantFail:
			t.Fatalf("%s: succeeded, but the docs say it fails\noutput:\n%s", where, out)
		}
		if want, ok := blk.Opts["expect"]; ok && !strings.Contains(out, subst(want)) {
			showLogs()
			t.Fatalf("%s: output lacks %q\nblock:\n%s\noutput:\n%s", where, subst(want), text, out)
		}
	}
}

// missing returns the first of a comma-separated list of commands that is
// not installed, or "".
func missing(cmds string) string {
	for _, c := range strings.Split(cmds, ",") {
		if c == "" {
			continue
		}
		if _, err := exec.LookPath(c); err != nil {
			return c
		}
	}
	return ""
}

// runForeground runs cmd, killing its whole process group after timeout.
func runForeground(cmd *exec.Cmd, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-ctx.Done():
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return out.String(), fmt.Errorf("timed out after %v", timeout)
	}
}

func startBackground(t *testing.T, blk Block, cmd *exec.Cmd, logPath string) *bgProc {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // the child holds its own descriptor
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	bg := &bgProc{block: blk, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		bg.err = cmd.Wait()
		close(bg.done)
	}()
	return bg
}

// stopBackground ends a background block's process group: SIGTERM first,
// SIGKILL if it has not exited ten seconds later.
func stopBackground(t *testing.T, bg *bgProc) {
	pgid := bg.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-bg.done:
	case <-time.After(10 * time.Second):
		t.Errorf("background block at line %d ignored SIGTERM; killing it", bg.block.Line)
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-bg.done
	}
	// Children that outlived the shell (go run's binary) go too.
	syscall.Kill(-pgid, syscall.SIGKILL)
}

// waitReady polls url until it answers, the process exits or limit passes.
func waitReady(bg *bgProc, url string, limit time.Duration) error {
	// Any answer will do, even with a certificate nobody trusts.
	tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-bg.done:
			b, _ := os.ReadFile(bg.log)
			return fmt.Errorf("background block exited (%v) before %s answered:\n%s", bg.err, url, b)
		case <-deadline.C:
			return fmt.Errorf("%s did not answer within %v (last error: %v)", url, limit, err)
		case <-tick.C:
		}
	}
}

// freePort returns a loopback port free for both TCP and UDP a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		ln.Close()
		if err == nil {
			pc.Close()
			return p
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatal(err)
		}
	}
	t.Fatal("no free port for both TCP and UDP")
	return 0
}
