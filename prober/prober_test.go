package prober_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/openderp/openderp/prober"
)

// counter returns a ProbeClass whose probe counts its runs and fails
// when fail says so.
func counter(n *atomic.Int32, fail func(run int32) error) prober.ProbeClass {
	return prober.ProbeClass{
		Class: "test",
		Probe: func(ctx context.Context) error {
			run := n.Add(1)
			if fail != nil {
				return fail(run)
			}
			return nil
		},
	}
}

func TestInitialDelay(t *testing.T) {
	for _, name := range []string{"a", "derp/nyc/1a/tls", "derpmap-probe", ""} {
		d := prober.InitialDelay(name, 15*time.Second)
		if d < 0 || d >= 15*time.Second {
			t.Errorf("InitialDelay(%q) = %v; want in [0, 15s)", name, d)
		}
		if d2 := prober.InitialDelay(name, 15*time.Second); d2 != d {
			t.Errorf("InitialDelay(%q) = %v then %v; want deterministic", name, d, d2)
		}
	}
	if prober.InitialDelay("a", time.Minute) == prober.InitialDelay("b", time.Minute) {
		t.Errorf("names a and b got the same delay")
	}
}

func TestScheduleWithoutSpread(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := prober.New()
		defer p.Close()
		var n atomic.Int32
		p.Run("p", 10*time.Second, nil, counter(&n, nil))
		synctest.Wait()
		if got := n.Load(); got != 1 {
			t.Fatalf("runs right after Run = %d; want 1", got)
		}
		time.Sleep(35 * time.Second)
		synctest.Wait()
		if got := n.Load(); got != 4 {
			t.Fatalf("runs after 35s = %d; want 4", got)
		}
	})
}

func TestScheduleWithSpread(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := prober.New().WithSpread(true)
		defer p.Close()
		const name, interval = "spread-me", 10 * time.Second
		delay := prober.InitialDelay(name, interval)
		if delay < time.Second {
			t.Fatalf("test needs a name with a delay of at least 1s; got %v", delay)
		}
		var n atomic.Int32
		p.Run(name, interval, nil, counter(&n, nil))
		time.Sleep(delay - time.Millisecond)
		synctest.Wait()
		if got := n.Load(); got != 0 {
			t.Fatalf("runs before the initial delay = %d; want 0", got)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if got := n.Load(); got != 1 {
			t.Fatalf("runs at the initial delay = %d; want 1", got)
		}
		time.Sleep(interval)
		synctest.Wait()
		if got := n.Load(); got != 2 {
			t.Fatalf("runs one interval later = %d; want 2", got)
		}
	})
}

func TestOnceAndWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := prober.New().WithOnce(true).WithSpread(true)
		defer p.Close()
		var parent, child atomic.Int32
		p.Run("parent", time.Minute, nil, prober.ProbeClass{Class: "c", Probe: func(context.Context) error {
			parent.Add(1)
			// A probe may create probes; Wait must wait for them too.
			for i := range 3 {
				p.Run(fmt.Sprintf("child%d", i), time.Minute, prober.Labels{"i": fmt.Sprint(i)},
					counter(&child, func(run int32) error {
						if run == 2 {
							return errors.New("boom")
						}
						return nil
					}))
			}
			return nil
		}})
		p.Wait()
		if parent.Load() != 1 || child.Load() != 3 {
			t.Fatalf("runs: parent %d, children %d; want 1 and 3", parent.Load(), child.Load())
		}
		infos := p.ProbeInfo()
		if len(infos) != 4 {
			t.Fatalf("ProbeInfo has %d probes; want 4", len(infos))
		}
		fails := 0
		for name, info := range infos {
			if info.End.IsZero() {
				t.Errorf("%s: never finished", name)
			}
			if !info.Succeeded() {
				fails++
				if info.Error != "boom" || info.Latency != 0 {
					t.Errorf("%s: Error %q, Latency %v; want boom, 0", name, info.Error, info.Latency)
				}
			}
		}
		if fails != 1 {
			t.Errorf("failed probes = %d; want 1", fails)
		}
		// In once mode nothing runs again.
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if parent.Load() != 1 || child.Load() != 3 {
			t.Fatalf("runs after 5m: parent %d, children %d; want 1 and 3", parent.Load(), child.Load())
		}
	})
}

func TestTimeoutPanicAndHistory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := prober.New()
		defer p.Close()
		var n atomic.Int32
		var deadline time.Duration
		pr := p.Run("p", 10*time.Second, nil, prober.ProbeClass{Class: "c", Probe: func(ctx context.Context) error {
			run := n.Add(1)
			switch {
			case run == 1:
				d, _ := ctx.Deadline()
				deadline = time.Until(d)
				<-ctx.Done()
				return ctx.Err()
			case run == 2:
				panic("oops")
			case run%2 == 0:
				return errors.New("even")
			}
			time.Sleep(time.Duration(run) * time.Millisecond)
			return nil
		}})
		synctest.Wait()
		if deadline != 8*time.Second {
			t.Errorf("probe deadline = %v; want 8s (0.8 × interval)", deadline)
		}
		time.Sleep(8 * time.Second)
		synctest.Wait()
		info := pr.Info()
		if info.Succeeded() || info.Error != context.DeadlineExceeded.Error() {
			t.Errorf("after timeout: Result %v Error %q; want false, %q", info.Succeeded(), info.Error, context.DeadlineExceeded)
		}
		time.Sleep(10 * time.Second) // the ticker starts after the first run ends: run 2 at 18s panics
		synctest.Wait()
		if info := pr.Info(); info.Error != "panic: oops" {
			t.Errorf("after panic: Error %q; want %q", info.Error, "panic: oops")
		}
		time.Sleep(111 * time.Second) // runs 3..13
		synctest.Wait()
		info = pr.Info()
		if got := n.Load(); got != 13 {
			t.Fatalf("runs = %d; want 13", got)
		}
		// Runs 4..13: odd ones succeed.
		wantResults := []bool{false, true, false, true, false, true, false, true, false, true}
		if fmt.Sprint(info.RecentResults) != fmt.Sprint(wantResults) {
			t.Errorf("RecentResults = %v; want %v", info.RecentResults, wantResults)
		}
		if r := info.RecentSuccessRatio(); r != 0.5 {
			t.Errorf("RecentSuccessRatio = %v; want 0.5", r)
		}
		// Successful runs 3,5,...,13 slept run ms; the ring keeps all six.
		if len(info.RecentLatencies) != 6 || info.RecentMedianLatency() != 9*time.Millisecond {
			t.Errorf("RecentLatencies = %v, median %v; want 6 entries, median 9ms", info.RecentLatencies, info.RecentMedianLatency())
		}
		if !info.Succeeded() || info.Latency != 13*time.Millisecond {
			t.Errorf("last run: Result %v Latency %v; want true, 13ms", info.Succeeded(), info.Latency)
		}
	})
}

func TestCloseStopsAndUnregisters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := prober.New().WithSpread(true)
		var n atomic.Int32
		pr := p.Run("a", time.Hour, nil, counter(&n, nil))
		p.Run("b", time.Hour, nil, counter(&n, nil))
		pr.Close()
		pr.Close() // idempotent
		if p.Probe("a") != nil {
			t.Errorf("probe a still registered after Close")
		}
		// The name is free again.
		p.Run("a", time.Hour, nil, counter(&n, nil))
		p.Close()
		if len(p.ProbeInfo()) != 0 {
			t.Errorf("probes left after Prober.Close: %v", p.ProbeInfo())
		}
		p.Wait() // returns at once: nothing is running
		// Run after Close never runs.
		p.Run("late", time.Second, nil, counter(&n, nil))
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := n.Load(); got != 0 {
			t.Errorf("runs = %d; want 0", got)
		}
		if p.Probe("late") != nil {
			t.Errorf("probe registered after Close")
		}
	})
}

func TestRunPanicsOnMisuse(t *testing.T) {
	p := prober.New()
	defer p.Close()
	p.Run("x", time.Hour, nil, prober.ProbeClass{Class: "c", Probe: func(context.Context) error { return nil }})
	for name, f := range map[string]func(){
		"duplicate":      func() { p.Run("x", time.Hour, nil, prober.ProbeClass{}) },
		"zero interval":  func() { p.Run("y", 0, nil, prober.ProbeClass{}) },
		"reserved label": func() { p.Run("z", time.Hour, prober.Labels{"class": "x"}, prober.ProbeClass{}) },
		"label clash": func() {
			p.Run("w", time.Hour, prober.Labels{"a": "1"}, prober.ProbeClass{Labels: prober.Labels{"a": "2"}})
		},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("Run did not panic")
				}
			}()
			f()
		})
	}
}
