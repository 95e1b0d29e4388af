package derp

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/openderp/openderp/derp/derptest"
	"github.com/openderp/openderp/key"
)

func TestWriteTimeoutFor(t *testing.T) {
	tests := []struct {
		name  string
		field time.Duration // Server.WriteTimeout
		set   *time.Duration
		mesh  bool
		want  time.Duration
	}{
		{"default", 0, nil, false, 2 * time.Second},
		{"set", 0, ptr(5 * time.Second), false, 5 * time.Second},
		{"zero disables", 0, ptr(time.Duration(0)), false, 0},
		{"negative disables", 0, ptr(-time.Second), false, 0},
		{"mesh peer default", 0, nil, true, 30 * time.Second},
		{"mesh peer ignores zero", 0, ptr(time.Duration(0)), true, 30 * time.Second},
		{"field overrides", time.Second, ptr(time.Duration(0)), false, time.Second},
	}
	for _, tt := range tests {
		s := NewServer(key.NewNode(), nil)
		s.WriteTimeout = tt.field
		if tt.set != nil {
			s.SetTCPWriteTimeout(*tt.set)
		}
		if got := s.writeTimeoutFor(tt.mesh); got != tt.want {
			t.Errorf("%s: writeTimeoutFor = %v; want %v", tt.name, got, tt.want)
		}
		s.Close()
	}
}

func ptr[T any](v T) *T { return &v }

// A receiver that stops reading is cut off when a write exceeds the
// deadline, and the timeout is counted once.
func TestWriteTimeoutCounted(t *testing.T) {
	s := NewServer(key.NewNode(), t.Logf)
	defer s.Close()
	s.SetTCPWriteTimeout(50 * time.Millisecond)

	cn, sn := derptest.PipeSize(4096)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.Accept(context.Background(), sn, bufioRW(sn), "192.0.2.5:5")
	}()
	defer func() { cn.Close(); wg.Wait() }()
	rx, err := NewClient(key.NewNode(), cn, bufioRW(cn), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	recvMsg(t, rx) // ServerInfo; then rx reads nothing more

	tx := pipeClientOpts(t, s, "192.0.2.6:6", ConnOptions{})
	pkt := make([]byte, 1000)
	for range 64 {
		if err := tx.Send(rx.PublicKey(), pkt); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "sclient_write_timeouts = 1", func() bool { return s.metrics.writeTimeouts.Value() == 1 })
	if got := s.vars.Get("sclient_write_timeouts").String(); got != "1" {
		t.Errorf("expvar sclient_write_timeouts = %s", got)
	}
}
