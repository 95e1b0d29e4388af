package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/openderp/openderp/internal/relayload"
)

// The round-trip probe runs in a process of its own: the harness binary
// started again with probeEnv set. Sharing the load generator's process,
// the probe's goroutines queued behind sixteen busy senders and receivers
// in the same Go scheduler, so under flat-out load the figure measured
// the client more than the server. In its own process the probe pair
// competes with the load only for the CPU, as a real peer of the relay
// does, and equally so for every server.
//
// The exchange over the child's standard streams: it connects and proves
// its path, prints "ready", waits for a line on standard input, probes for
// the given duration and prints its relayload.RTT as one JSON line.

// probeEnv, when set in the environment, makes the binary a probe process.
const probeEnv = "DERP_COMPARE_PROBE"

// probeSetupTimeout bounds the child's connecting and the parent's waiting
// for each of its lines beyond the probing itself.
const probeSetupTimeout = 30 * time.Second

// probeMain is the probe process. It exits on its own after the duration,
// or when its standard input closes before it is told to begin.
func probeMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "server's DERP URL")
	d := fs.Duration("d", time.Second, "how long to probe")
	gap := fs.Duration("gap", rttGap, "pause between round trips")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *d+2*probeSetupTimeout)
	defer cancel()
	in := bufio.NewReader(stdin)
	var beginErr error
	res, err := relayload.Run(ctx, relayload.Config{
		URL: *url, Size: relayload.MinSize, Duration: *d, RTTInterval: *gap,
		Started: func() {
			fmt.Fprintln(stdout, "ready")
			if _, err := in.ReadString('\n'); err != nil {
				beginErr = fmt.Errorf("waiting for the start: %w", err)
				cancel() // stops the run at once
			}
		},
	})
	if err == nil {
		err = beginErr
	}
	if err != nil {
		fmt.Fprintf(stderr, "probe: %v\n", err)
		return 1
	}
	if err := json.NewEncoder(stdout).Encode(res.RTT); err != nil {
		fmt.Fprintf(stderr, "probe: %v\n", err)
		return 1
	}
	return 0
}

// probeProc is a running probe process, seen from the harness.
type probeProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // the child's standard output, line by line
	log   strings.Builder
	done  bool // Wait has been called
}

// wait reaps the process once its output is read.
func (p *probeProc) wait() {
	if !p.done {
		p.done = true
		p.cmd.Wait()
	}
}

// startProbe starts a probe process against url and waits until its path
// through the server is ready.
func startProbe(ctx context.Context, url string, d, gap time.Duration) (*probeProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the harness binary for the probe: %w", err)
	}
	p := &probeProc{lines: make(chan string, 2)}
	p.cmd = exec.Command(exe, "-url", url, "-d", d.String(), "-gap", gap.String())
	p.cmd.Env = append(os.Environ(), probeEnv+"=1")
	p.cmd.Stderr = &p.log
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the probe process: %w", err)
	}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	line, err := p.next(ctx)
	if err == nil && line != "ready" {
		err = fmt.Errorf("probe process said %q, want ready", line)
	}
	if err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// next returns the child's next line of output.
func (p *probeProc) next(ctx context.Context) (string, error) {
	t := time.NewTimer(probeSetupTimeout)
	defer t.Stop()
	select {
	case l, ok := <-p.lines:
		if !ok {
			p.wait()
			return "", fmt.Errorf("probe process ended early: %s", strings.TrimSpace(p.log.String()))
		}
		return l, nil
	case <-t.C:
		return "", errors.New("probe process did not answer in time")
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// begin tells the probe to start probing.
func (p *probeProc) begin() error {
	_, err := io.WriteString(p.stdin, "go\n")
	return err
}

// result waits for the probe's figures and for the process to end.
func (p *probeProc) result(ctx context.Context) (relayload.RTT, error) {
	var rtt relayload.RTT
	line, err := p.next(ctx)
	if err == nil {
		err = json.Unmarshal([]byte(line), &rtt)
	}
	p.stop()
	return rtt, err
}

// stop ends the process, killing it if it does not end by itself.
func (p *probeProc) stop() {
	p.stdin.Close()
	done := make(chan struct{})
	go func() {
		for range p.lines { // let the reader finish
		}
		p.wait()
		close(done)
	}()
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		p.cmd.Process.Kill()
		<-done
	}
}
