package derp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openderp/openderp/key"
)

// lockedBuffer is a bytes.Buffer safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// jsonRecords parses JSON log lines.
func jsonRecords(t *testing.T, s string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		recs = append(recs, m)
	}
	return recs
}

func jsonLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// TestLoggerAttrs checks that structured records about a connection carry
// its address and short key, that debug lines follow the logger's level,
// and that the mesh key never shows.
func TestLoggerAttrs(t *testing.T) {
	tests := []struct {
		name          string
		level         slog.Level
		wantConnected bool
	}{
		{"debug", slog.LevelDebug, true},
		{"info", slog.LevelInfo, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf lockedBuffer
			s := NewServer(key.NewNode(), t.Logf)
			s.SetMeshKey(testMeshKey)
			s.SetDisallowedAppNames([]string{"blocked"})
			s.SetLogger(jsonLogger(&buf, tt.level))

			// A refused client, then an admitted mesh peer.
			refused := pipeAccept(t, s, "192.0.2.7:1000", ConnOptions{})
			if rawHandshake(t, refused, clientInfo{Version: 2, AppName: "blocked"}) {
				t.Fatal("blocked app admitted")
			}
			priv := key.NewNode()
			nc := pipeAccept(t, s, "192.0.2.8:2000", ConnOptions{})
			c, err := NewClient(priv, nc, bufioRW(nc), t.Logf, MeshKey(testMeshKey))
			if err != nil {
				t.Fatal(err)
			}
			recvMsg(t, c)
			c.Close()
			s.Close() // waits for the connections, so every line is written

			out := buf.String()
			if strings.Contains(strings.ToLower(out), testMeshKey) {
				t.Errorf("mesh key logged:\n%s", out)
			}
			var rejected, connected bool
			for _, r := range jsonRecords(t, out) {
				msg, _ := r["msg"].(string)
				switch {
				case strings.Contains(msg, "rejected"):
					rejected = true
					if r["addr"] != "192.0.2.7:1000" || r["level"] != "INFO" || r["err"] == nil {
						t.Errorf("rejection record %v", r)
					}
					if k, _ := r["key"].(string); k == "" {
						t.Errorf("rejection record without key: %v", r)
					}
				case strings.Contains(msg, "connected (mesh true"):
					connected = true
					if r["addr"] != "192.0.2.8:2000" || r["key"] != priv.Public().ShortString() || r["level"] != "DEBUG" {
						t.Errorf("connected record %v", r)
					}
				}
			}
			if !rejected {
				t.Errorf("no rejection record:\n%s", out)
			}
			if connected != tt.wantConnected {
				t.Errorf("connected logged = %v, want %v:\n%s", connected, tt.wantConnected, out)
			}
		})
	}
}

// TestConnErrorRateLimit feeds the connection error log a sequence of
// failures on a fake clock and checks what is written and counted.
func TestConnErrorRateLimit(t *testing.T) {
	rejected := &RejectedError{Key: key.NewNode().Public(), Reason: "admission controller denied the client"}
	type event struct {
		after time.Duration // clock advance before the event
		addr  string
		err   error
	}
	same := func(n int, addr string, err error) []event {
		var ev []event
		for range n {
			ev = append(ev, event{addr: addr, err: err})
		}
		return ev
	}
	tests := []struct {
		name           string
		events         []event
		wantLines      int // connection error lines written
		wantSuppressed int64
		wantSummaries  []string // substrings of summary lines, in order
		summaryFirst   bool     // the first summary precedes the last line
	}{
		{
			name:      "burst passes",
			events:    same(logBurst, "198.51.100.1:1", rejected),
			wantLines: logBurst,
		},
		{
			name:           "beyond burst suppressed, summed up at close",
			events:         same(logBurst+3, "198.51.100.1:1", rejected),
			wantLines:      logBurst,
			wantSuppressed: 3,
			wantSummaries:  []string{"suppressed 3 similar lines (rejected: admission controller denied the client, from 198.51.100.1)"},
		},
		{
			name: "ports differ, same IP: one stream",
			events: append(same(logBurst, "198.51.100.1:1", io.EOF),
				event{addr: "198.51.100.1:2", err: io.EOF}),
			wantLines:      logBurst,
			wantSuppressed: 1,
			wantSummaries:  []string{"suppressed 1 similar lines (eof, from 198.51.100.1)"},
		},
		{
			name:      "other IP or reason: own stream",
			events:    append(append(same(logBurst, "198.51.100.1:1", rejected), same(logBurst, "198.51.100.2:1", rejected)...), same(logBurst, "198.51.100.1:1", io.EOF)...),
			wantLines: 3 * logBurst,
		},
		{
			name: "a quiet stream is summed up when another source fails later",
			events: append(same(logBurst+4, "198.51.100.1:1", rejected),
				event{after: logInterval, addr: "198.51.100.9:1", err: io.EOF}),
			wantLines:      logBurst + 1,
			wantSuppressed: 4,
			wantSummaries:  []string{"suppressed 4 similar lines (rejected: admission controller denied the client, from 198.51.100.1)"},
			summaryFirst:   true,
		},
		{
			name: "new interval: summary first, then lines again",
			events: append(same(logBurst+2, "[2001:db8::1]:5", rejected),
				event{after: logInterval, addr: "[2001:db8::1]:5", err: rejected}),
			wantLines:      logBurst + 1,
			wantSuppressed: 2,
			wantSummaries:  []string{"suppressed 2 similar lines (rejected: admission controller denied the client, from 2001:db8::1)"},
			summaryFirst:   true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf lockedBuffer
			s := NewServer(key.NewNode(), t.Logf)
			s.SetLogger(jsonLogger(&buf, slog.LevelInfo))
			now := time.Unix(1e9, 0)
			s.connErrLog.now = func() time.Time { return now }
			for _, e := range tt.events {
				now = now.Add(e.after)
				s.logConnError(e.addr, key.NodePublic{}, e.err)
			}
			s.Close()
			var lines int
			var summaries []string
			for _, r := range jsonRecords(t, buf.String()) {
				msg := r["msg"].(string)
				if tt.summaryFirst && len(summaries) == 0 && lines == tt.wantLines-1 && !strings.Contains(msg, "suppressed") {
					t.Errorf("last line %q came before any summary", msg)
				}
				if strings.Contains(msg, "suppressed") {
					summaries = append(summaries, msg)
					if n, _ := r["suppressed"].(float64); n < 1 || r["reason"] == nil || r["source"] == nil {
						t.Errorf("summary record without its attributes: %v", r)
					}
				} else {
					lines++
				}
			}
			if lines != tt.wantLines {
				t.Errorf("%d lines written, want %d:\n%s", lines, tt.wantLines, buf.String())
			}
			if got := s.metrics.logSuppressed.Value(); got != tt.wantSuppressed {
				t.Errorf("suppressed counter = %d, want %d", got, tt.wantSuppressed)
			}
			if len(summaries) != len(tt.wantSummaries) {
				t.Fatalf("summaries %q, want %q", summaries, tt.wantSummaries)
			}
			for i, want := range tt.wantSummaries {
				if !strings.Contains(summaries[i], want) {
					t.Errorf("summary %q, want it to contain %q", summaries[i], want)
				}
			}
		})
	}
}

// TestConnErrorLogBounded fills the table of streams: sources beyond it
// share one bucket, so memory stays bounded.
func TestConnErrorLogBounded(t *testing.T) {
	s := NewServer(key.NewNode(), nil)
	defer s.Close()
	now := time.Unix(1e9, 0)
	s.connErrLog.now = func() time.Time { return now }
	base := netip.MustParseAddr("10.0.0.0").As4()
	for i := range logMaxSources + 100 {
		a := base
		a[2], a[3] = byte(i>>8), byte(i)
		s.logConnError(netip.AddrPortFrom(netip.AddrFrom4(a), 1).String(), key.NodePublic{}, io.EOF)
	}
	if n := len(s.connErrLog.windows); n > logMaxSources+1 {
		t.Errorf("%d streams tracked, want at most %d", n, logMaxSources+1)
	}
	if got := s.metrics.logSuppressed.Value(); got != 100-logBurst {
		t.Errorf("suppressed = %d, want %d", got, 100-logBurst)
	}
}

func TestConnErrorReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&RejectedError{Reason: "x"}, "rejected: x"},
		{fmt.Errorf("wrapped: %w", &RejectedError{Reason: "y"}), "rejected: y"},
		{ErrTooManyConnections, "too many connections"},
		{ErrCannotOpenBox, "protocol error"},
		{os.ErrDeadlineExceeded, "timeout"},
		{io.EOF, "eof"},
		{errors.New("something else"), "other"},
	}
	for _, tt := range tests {
		if got := connErrorReason(tt.err); got != tt.want {
			t.Errorf("connErrorReason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestNoLoggerUsesLogf checks that without SetLogger lines reach Logf
// unchanged and debug lines are not invented.
func TestNoLoggerUsesLogf(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	s := NewServer(key.NewNode(), func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, fmt.Sprintf(format, args...))
	})
	s.logConnError("192.0.2.1:5", key.NodePublic{}, io.EOF)
	s.log(slog.LevelDebug, connLog{}, "debug only")
	s.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(lines) != 1 || lines[0] != "derp: 192.0.2.1:5: EOF" {
		t.Errorf("lines = %q", lines)
	}
}
