package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/openderp/openderp/bench/compare/servers/benchserver"
)

// impl is one DERP implementation under test: where its server module
// lives and which Go toolchain builds it.
type impl struct {
	name      string
	dir       string // package directory, relative to bench/compare
	toolchain string // GOTOOLCHAIN for the build; "" keeps the environment's
	maxProcs  int    // GOMAXPROCS for the server process; 0 keeps the environment's
	bin       string // built binary, set by build
}

// allImpls lists openderp first: ratios divide it by each reference.
func allImpls() []*impl {
	return []*impl{
		{name: "openderp", dir: "./servers/openderp", toolchain: os.Getenv("OPENDERP_TOOLCHAIN")},
		{name: "v1.76.3", dir: "./servers/v1.76.3"},
		// tailscale.com v1.104.5 requires Go 1.27.3, which the module proxy serves.
		{name: "v1.104.5", dir: "./servers/v1.104.5", toolchain: "go1.27.3"},
	}
}

// build compiles im into outDir.
func (im *impl) build(ctx context.Context, outDir string) error {
	bin := filepath.Join(outDir, im.name)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = im.dir
	cmd.Env = os.Environ()
	if im.toolchain != "" {
		cmd.Env = append(cmd.Env, "GOTOOLCHAIN="+im.toolchain)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("building %s in %s: %w\n%s", im.name, im.dir, err, out)
	}
	im.bin = bin
	return nil
}

// server is one running server process.
type server struct {
	impl  *impl
	cmd   *exec.Cmd
	stdin io.WriteCloser
	ready benchserver.Ready
	log   bytes.Buffer // its standard error
}

const startTimeout = 20 * time.Second

// start runs im's binary and waits for its ready line.
func (im *impl) start(useTLS bool) (*server, error) {
	args := []string{"-addr", "127.0.0.1:0"}
	if useTLS {
		args = append(args, "-tls")
	}
	s := &server{impl: im, cmd: exec.Command(im.bin, args...)}
	s.cmd.Stderr = &s.log
	if im.maxProcs > 0 {
		s.cmd.Env = append(os.Environ(), fmt.Sprintf("GOMAXPROCS=%d", im.maxProcs))
	}
	var err error
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", im.name, err)
	}
	line := make(chan []byte, 1)
	go func() {
		b, _ := bufio.NewReader(stdout).ReadBytes('\n')
		line <- b
		io.Copy(io.Discard, stdout)
	}()
	t := time.NewTimer(startTimeout)
	defer t.Stop()
	select {
	case b := <-line:
		if err := json.Unmarshal(b, &s.ready); err != nil {
			s.stop()
			return nil, fmt.Errorf("%s did not start: %q: %w; stderr: %s", im.name, b, err, s.log.String())
		}
	case <-t.C:
		s.stop()
		return nil, fmt.Errorf("%s did not start within %v", im.name, startTimeout)
	}
	return s, nil
}

// url returns the server's DERP URL.
func (s *server) url() string {
	scheme := "http"
	if s.ready.Pin != "" {
		scheme = "https"
	}
	return scheme + "://" + s.ready.Addr + "/derp"
}

// stop closes the server's standard input, which ends it, and kills it if
// it lingers.
func (s *server) stop() {
	s.stdin.Close()
	done := make(chan struct{})
	go func() {
		s.cmd.Wait()
		close(done)
	}()
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.cmd.Process.Kill()
		<-done
	}
}

// clockTicks is USER_HZ, the unit of CPU times in /proc; 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// cpu returns the user plus system CPU time the server has used.
func (s *server) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces; count after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("parsing /proc stat: %w", err)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// rss returns the server's resident set size in bytes.
func (s *server) rss() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parsing VmRSS: %w", err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// mem asks the server to collect garbage and report its Go memory.
func (s *server) mem(ctx context.Context, hc *http.Client) (benchserver.Mem, error) {
	var m benchserver.Mem
	scheme := "http"
	if s.ready.Pin != "" {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, "GET", scheme+"://"+s.ready.Addr+"/bench/mem", nil)
	if err != nil {
		return m, err
	}
	res, err := hc.Do(req)
	if err != nil {
		return m, fmt.Errorf("asking %s for its memory: %w", s.impl.name, err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
		return m, fmt.Errorf("reading %s's memory report: %w", s.impl.name, err)
	}
	return m, nil
}

// footprint is a server's memory at one moment: its live Go heap and
// stacks after a collection, and its resident set.
type footprint struct {
	goBytes  int64 // heap objects plus stacks
	rssBytes int64
}

// footprint measures s's memory now.
func (s *server) footprint(ctx context.Context, hc *http.Client) (footprint, error) {
	m, err := s.mem(ctx, hc)
	if err != nil {
		return footprint{}, err
	}
	rss, err := s.rss()
	if err != nil {
		return footprint{}, err
	}
	return footprint{goBytes: int64(m.HeapObjectsBytes + m.StackBytes), rssBytes: rss}, nil
}

// perConn returns the growth from base to f per connection, in KiB, of
// the resident set and of the Go heap and stacks.
func (f footprint) perConn(base footprint, n int) (rssKiB, goKiB float64) {
	return float64(f.rssBytes-base.rssBytes) / float64(n) / 1024, float64(f.goBytes-base.goBytes) / float64(n) / 1024
}
