package relayload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/internal/leakcheck"
	"github.com/openderp/openderp/key"
)

func TestMain(m *testing.M) {
	leakcheck.Main(m, "github.com/openderp/openderp/")
}

// startServer runs our DERP server behind an HTTP (or HTTPS) loopback
// listener and returns its /derp URL.
func startServer(t *testing.T, useTLS bool) (url string, ts *httptest.Server) {
	t.Helper()
	s := derp.NewServer(key.NewNode(), t.Logf)
	mux := http.NewServeMux()
	mux.Handle("/derp", derphttp.Handler(s))
	ts = httptest.NewUnstartedServer(mux)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // rejected handshakes are expected
	if useTLS {
		ts.StartTLS()
	} else {
		ts.Start()
	}
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return ts.URL + "/derp", ts
}

func TestRunModes(t *testing.T) {
	url, _ := startServer(t, false)
	tests := []struct {
		name     string
		window   int
		rate     float64
		mode     string
		maxPerPr int64 // upper bound on packets sent per pair, 0: none
	}{
		{"flat", 0, 0, "flat", 0},
		{"window", 8, 0, "window", 0},
		{"rate", 0, 100, "rate", 100}, // 100/s for 0.3s, plus slack
		{"window+rate", 4, 200, "window+rate", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var progress int
			res, err := Run(context.Background(), Config{
				URL: url, Pairs: 2, Size: 100, Window: tt.window, Rate: tt.rate,
				Duration: 300 * time.Millisecond, RTTInterval: time.Millisecond,
				Progress: func(Progress) { progress++ }, ProgressInterval: 50 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Mode != tt.mode || res.Pairs != 2 || res.Size != 100 {
				t.Errorf("result describes %s/%d pairs/%d B, want %s/2/100", res.Mode, res.Pairs, res.Size, tt.mode)
			}
			if res.Delivered <= 0 || res.Delivered > res.Sent {
				t.Errorf("delivered %d of %d sent", res.Delivered, res.Sent)
			}
			if tt.maxPerPr > 0 && res.Sent > 2*tt.maxPerPr {
				t.Errorf("sent %d packets, rate allows at most about %d", res.Sent, 2*tt.maxPerPr)
			}
			if res.PacketsPerSec <= 0 || res.MBPerSec <= 0 || res.Seconds <= 0 {
				t.Errorf("rates %v pkt/s, %v MB/s over %v s", res.PacketsPerSec, res.MBPerSec, res.Seconds)
			}
			if res.RTT.Samples == 0 || res.RTT.P50 <= 0 || res.RTT.P50 > res.RTT.P99 || res.RTT.P99 > res.RTT.Max {
				t.Errorf("RTT summary inconsistent: %+v", res.RTT)
			}
			if progress == 0 {
				t.Error("no progress reported")
			}
		})
	}
}

func TestRunProbeOnly(t *testing.T) {
	url, _ := startServer(t, false)
	res, err := Run(context.Background(), Config{URL: url, Size: 100, Duration: 100 * time.Millisecond, RTTInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 0 || res.RTT.Samples == 0 {
		t.Errorf("sent %d, RTT samples %d; want 0 and some", res.Sent, res.RTT.Samples)
	}
}

func TestRunMaxPackets(t *testing.T) {
	url, _ := startServer(t, false)
	var started, stopped bool
	res, err := Run(context.Background(), Config{
		URL: url, Pairs: 3, Size: 64, Window: 4, Duration: time.Minute, MaxPackets: 50,
		RTTInterval: -1,
		Started:     func() { started = true },
		Stopped:     func() { stopped = true },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 50 {
		t.Errorf("sent %d packets, want exactly the limit 50", res.Sent)
	}
	if res.Seconds > 30 {
		t.Errorf("run took %v s; the packet limit did not end it", res.Seconds)
	}
	if res.RTT.Samples != 0 {
		t.Errorf("probe off but %d RTT samples", res.RTT.Samples)
	}
	if !started || !stopped {
		t.Errorf("hooks: started %v, stopped %v", started, stopped)
	}
}

func TestRunContextEnds(t *testing.T) {
	url, _ := startServer(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	res, err := Run(ctx, Config{
		URL: url, Pairs: 1, Size: 64, Duration: time.Minute,
		Started: cancel,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Seconds > 30 {
		t.Errorf("run took %v s after its context ended", res.Seconds)
	}
}

func TestRunTLSPin(t *testing.T) {
	url, ts := startServer(t, true)
	sum := sha256.Sum256(ts.Certificate().Raw)
	good := PinPrefix + hex.EncodeToString(sum[:])
	sum[0] ^= 1
	bad := PinPrefix + hex.EncodeToString(sum[:])
	tests := []struct {
		name    string
		pin     string
		wantErr string
	}{
		{"matching pin", good, ""},
		{"other pin", bad, "does not match the pin"},
		{"no pin, self-signed", "", "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{URL: url, Pairs: 1, Size: 64, Window: 1, Duration: 50 * time.Millisecond, RTTInterval: -1}
			if tt.pin != "" {
				tc, err := PinnedTLSConfig(tt.pin)
				if err != nil {
					t.Fatal(err)
				}
				cfg.TLSConfig = tc
			}
			res, err := Run(context.Background(), cfg)
			if tt.wantErr == "" {
				if err != nil || res.Delivered == 0 {
					t.Fatalf("Run = %+v, %v; want packets delivered", res, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Run error = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigCheck(t *testing.T) {
	ok := Config{URL: "http://127.0.0.1:1/derp", Pairs: 1, Size: 100, Duration: time.Second}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"scheme", func(c *Config) { c.URL = "ftp://x/derp" }, "scheme"},
		{"bad URL", func(c *Config) { c.URL = "http://[::1" }, "URL"},
		{"negative pairs", func(c *Config) { c.Pairs = -1 }, "pairs"},
		{"too many pairs", func(c *Config) { c.Pairs = MaxPairs + 1 }, "pairs"},
		{"tiny packets", func(c *Config) { c.Size = MinSize - 1 }, "size"},
		{"huge packets", func(c *Config) { c.Size = MaxSize + 1 }, "size"},
		{"negative window", func(c *Config) { c.Window = -1 }, "window"},
		{"negative rate", func(c *Config) { c.Rate = -1 }, "rate"},
		{"no duration", func(c *Config) { c.Duration = 0 }, "duration"},
		{"endless", func(c *Config) { c.Duration = MaxDuration + 1 }, "duration"},
		{"negative limit", func(c *Config) { c.MaxPackets = -1 }, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mutate(&c)
			_, err := Run(context.Background(), c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	if err := ok.Check(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
}

func TestPercentile(t *testing.T) {
	s := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := []struct {
		q    float64
		want time.Duration
	}{{0, 1}, {0.5, 5}, {0.9, 9}, {0.99, 10}, {1, 10}}
	for _, tt := range tests {
		if got := percentile(s, tt.q); got != tt.want {
			t.Errorf("percentile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile of nothing = %v, want 0", got)
	}
}
