package derp

import (
	"bytes"
	"testing"
	"time"

	"github.com/openderp/openderp/key"
)

func TestRateLimitNormalize(t *testing.T) {
	tests := []struct {
		in, want RateLimit
	}{
		{RateLimit{}, RateLimit{}},
		{RateLimit{BurstBytes: 5}, RateLimit{}},
		{RateLimit{BytesPerSecond: 1000}, RateLimit{1000, 65568}},
		{RateLimit{BytesPerSecond: 1000, BurstBytes: 65567}, RateLimit{1000, 65568}},
		{RateLimit{BytesPerSecond: 1000, BurstBytes: 1 << 20}, RateLimit{1000, 1 << 20}},
	}
	for _, tt := range tests {
		if got := tt.in.normalize(); got != tt.want {
			t.Errorf("%+v.normalize() = %+v; want %+v", tt.in, got, tt.want)
		}
	}
}

func TestRateLimitMetricsPublishedOnlyWhenSet(t *testing.T) {
	s := NewServer(key.NewNode(), nil)
	defer s.Close()
	names := []string{"rate_limit_per_client_bytes_per_second", "rate_limit_per_client_burst_bytes", "rate_limit_per_client_waited"}
	for _, n := range names {
		if s.vars.Get(n) != nil {
			t.Fatalf("%s published before SetPerClientRateLimit", n)
		}
	}
	s.SetPerClientRateLimit(RateLimit{BytesPerSecond: 1000, BurstBytes: 10})
	want := []string{"1000", "65568", "0"}
	for i, n := range names {
		v := s.vars.Get(n)
		if v == nil || v.String() != want[i] {
			t.Errorf("%s = %v; want %s", n, v, want[i])
		}
	}
	s.SetPerClientRateLimit(RateLimit{})
	if got := s.vars.Get(names[0]).String(); got != "0" {
		t.Errorf("after turning off, rate = %s", got)
	}
}

// Frames beyond the burst wait for tokens and are all delivered; mesh
// peers never wait.
func TestRateLimitPausesReading(t *testing.T) {
	s := NewServer(key.NewNode(), t.Logf)
	defer s.Close()
	s.SetMeshKey(testMeshKey)
	// 4 MB/s: the second full-size frame waits about 16 ms.
	s.SetPerClientRateLimit(RateLimit{BytesPerSecond: 4 << 20})
	rx := pipeClientOpts(t, s, "192.0.2.7:7", ConnOptions{})
	pkt := bytes.Repeat([]byte{7}, MaxPacketSize)

	tests := []struct {
		name       string
		opts       []ClientOpt
		wantWaited bool
	}{
		{"mesh peer exempt", []ClientOpt{MeshKey(testMeshKey)}, false},
		{"regular client waits", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.metrics.rateLimitWaited.Value()
			tx := pipeClientOpts(t, s, "192.0.2.8:8", ConnOptions{}, tt.opts...)
			const n = 4
			for range n {
				if err := tx.Send(rx.PublicKey(), pkt); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < n; {
				switch m := recvMsg(t, rx).(type) {
				case ReceivedPacket:
					if m.Source != tx.PublicKey() || len(m.Data) != len(pkt) {
						t.Fatalf("packet %d: from %v, %d bytes", i, m.Source, len(m.Data))
					}
					i++
				case PeerGoneMessage, KeepAliveMessage: // the previous sender left
				default:
					t.Fatalf("got %#v", m)
				}
			}
			waited := s.metrics.rateLimitWaited.Value() - before
			if (waited > 0) != tt.wantWaited {
				t.Errorf("frames that waited = %d; want waiting %v", waited, tt.wantWaited)
			}
		})
	}
}

// A change of limit keeps the bucket's level (no refill on reload).
func TestRecvLimiterKeepsLevel(t *testing.T) {
	var rl recvLimiter
	rl.apply(&RateLimit{BytesPerSecond: 1, BurstBytes: 100000})
	now := time.Now()
	if !rl.lim.AllowN(now, 100000) {
		t.Fatal("a fresh bucket is not full")
	}
	rl.apply(&RateLimit{BytesPerSecond: 2, BurstBytes: 100000})
	if rl.lim.AllowN(now, 50000) {
		t.Error("reload refilled the bucket")
	}
	rl.apply(&RateLimit{})
	if rl.lim != nil {
		t.Error("limit 0 kept a limiter")
	}
}
