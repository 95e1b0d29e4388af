package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"strings"
	"testing"
)

func TestParseLogSettings(t *testing.T) {
	tests := []struct {
		format, level string
		want          logSettings
		wantErr       string
	}{
		{"text", "info", logSettings{logFormatText, slog.LevelInfo}, ""},
		{"json", "debug", logSettings{logFormatJSON, slog.LevelDebug}, ""},
		{"text", "warn", logSettings{logFormatText, slog.LevelWarn}, ""},
		{"json", "ERROR", logSettings{logFormatJSON, slog.LevelError}, ""},
		{"xml", "info", logSettings{}, "-log-format"},
		{"", "info", logSettings{}, "-log-format"},
		{"text", "verbose", logSettings{}, "-log-level"},
		{"text", "", logSettings{}, "-log-level"},
	}
	for _, tt := range tests {
		t.Run(tt.format+"/"+tt.level, func(t *testing.T) {
			got, err := parseLogSettings(tt.format, tt.level)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("= %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// TestLoggerOutput checks each format and level: what is written, and
// that the text format is the reference's "date time message" line.
func TestLoggerOutput(t *testing.T) {
	textLine := regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d derper: hello 7\n$`)
	tests := []struct {
		format    string
		level     string
		logAt     slog.Level
		wantLines int
	}{
		{"text", "info", slog.LevelInfo, 1},
		{"text", "info", slog.LevelDebug, 0},
		{"text", "warn", slog.LevelInfo, 0},
		{"text", "error", slog.LevelError, 1},
		{"json", "debug", slog.LevelDebug, 1},
		{"json", "info", slog.LevelWarn, 1},
		{"json", "error", slog.LevelWarn, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s/%v", tt.format, tt.level, tt.logAt), func(t *testing.T) {
			ls, err := parseLogSettings(tt.format, tt.level)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			lg := newLogger(&buf, ls)
			printfLogger(lg, tt.logAt)("derper: hello %d", 7)
			if n := strings.Count(buf.String(), "\n"); n != tt.wantLines {
				t.Fatalf("%d lines, want %d: %q", n, tt.wantLines, buf.String())
			}
			if tt.wantLines == 0 {
				return
			}
			switch tt.format {
			case "text":
				if !textLine.MatchString(buf.String()) {
					t.Errorf("text line %q", buf.String())
				}
			case "json":
				var m map[string]any
				if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
					t.Fatal(err)
				}
				if m["msg"] != "derper: hello 7" || m["level"] != tt.logAt.String() || m["time"] == nil {
					t.Errorf("record %v", m)
				}
			}
		})
	}
}

// TestPlainHandlerAttrs: the text format prints messages only, so a
// line with attributes still reads as the reference's.
func TestPlainHandlerAttrs(t *testing.T) {
	var buf bytes.Buffer
	lg := newLogger(&buf, logSettings{logFormatText, slog.LevelInfo}).With("a", 1)
	lg.Info("derper: serving on :443 with TLS", "stage", stageReady)
	lg.Log(context.Background(), slog.LevelInfo, "two\nlines\n")
	got := buf.String()
	if !strings.HasSuffix(got, " two\nlines\n") || strings.Count(got, "\n") != 3 || strings.Contains(got, "stage") {
		t.Errorf("got %q", got)
	}
	if !strings.Contains(strings.SplitN(got, "\n", 2)[0], " derper: serving on :443 with TLS") {
		t.Errorf("got %q", got)
	}
}

func TestLogWriterFiltersNoise(t *testing.T) {
	var buf bytes.Buffer
	lg := newLogger(&buf, logSettings{logFormatJSON, slog.LevelInfo})
	el := httpErrorLog(logWriter{lg, slog.LevelInfo})
	el.Print("http: TLS handshake error from 1.2.3.4:5: EOF")
	el.Print("http: Accept error: too many open files")
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("%q: %v", buf.String(), err)
	}
	if m["msg"] != "http: Accept error: too many open files" {
		t.Errorf("record %v", m)
	}
}

func TestCertHint(t *testing.T) {
	notExist := fmt.Errorf("certs: loading /d/h.crt: %w", fs.ErrNotExist)
	mismatch := fmt.Errorf("certs: /d/x.crt: %w", x509.HostnameError{Certificate: &x509.Certificate{DNSNames: []string{"other.example"}}, Host: "relay.example"})
	tests := []struct {
		name, mode, hostname string
		err                  error
		want                 []string // substrings of the message; nil: err unchanged
	}{
		{"missing files", "manual", "relay.example", notExist, []string{"relay.example.crt", "relay.example.key", "-certdir", "fix:"}},
		{"missing files, IP", "manual", "192.0.2.1", notExist, []string{"192.0.2.1.crt", "self-signed"}},
		{"wrong name", "manual", "relay.example", mismatch, []string{"does not cover -hostname \"relay.example\"", "other.example"}},
		{"key mismatch", "manual", "relay.example", errors.New("certs: loading x: tls: private key does not match public key"), []string{"relay.example.key is not the key"}},
		{"other", "manual", "relay.example", errors.New("boom"), nil},
		{"acme", "letsencrypt", "relay.example", notExist, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &options{certMode: tt.mode, certDir: "/d", hostname: tt.hostname}
			got := certHint(tt.err, o)
			if !errors.Is(got, tt.err) {
				t.Errorf("hint lost the error: %v", got)
			}
			if tt.want == nil {
				if got != tt.err {
					t.Errorf("= %v, want unchanged", got)
				}
				return
			}
			for _, w := range tt.want {
				if !strings.Contains(got.Error(), w) {
					t.Errorf("%q lacks %q", got, w)
				}
			}
		})
	}
}

// FuzzParseLogSettings: exactly the documented values are accepted, the
// level in any case, and an error names the flag at fault.
func FuzzParseLogSettings(f *testing.F) {
	for _, s := range [][2]string{{"text", "info"}, {"json", "DEBUG"}, {"xml", "warn"}, {"text", "trace"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, format, level string) {
		ls, err := parseLogSettings(format, level)
		okFormat := format == "text" || format == "json"
		lv := strings.ToLower(level)
		okLevel := lv == "debug" || lv == "info" || lv == "warn" || lv == "error"
		if (err == nil) != (okFormat && okLevel) {
			t.Fatalf("(%q, %q): err %v", format, level, err)
		}
		if err != nil {
			if want := map[bool]string{true: "-log-level", false: "-log-format"}[okFormat]; !strings.Contains(err.Error(), want) {
				t.Fatalf("(%q, %q): error %q does not name %s", format, level, err, want)
			}
			return
		}
		if ls.format != format || strings.ToLower(ls.level.String()) != lv {
			t.Fatalf("(%q, %q) = %+v", format, level, ls)
		}
	})
}

// TestMeshLevels: failures to reach a mesh peer are warnings, the rest
// information, and every line names the peer.
func TestMeshLevels(t *testing.T) {
	tests := []struct {
		format, want string
	}{
		{"mesh connect: %v", "WARN"},
		{"recv error: %v", "WARN"},
		{"connected; %d peers", "INFO"},
		{"detected self-connect; ignoring host", "INFO"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		lg := newLogger(&buf, logSettings{logFormatJSON, slog.LevelInfo})
		meshLevels(lg.With("peer", "b.example"), "b.example")(tt.format, 1)
		var m map[string]any
		if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
			t.Fatalf("%q: %v", buf.String(), err)
		}
		if m["level"] != tt.want || m["peer"] != "b.example" || !strings.HasPrefix(m["msg"].(string), `mesh("b.example"): `) {
			t.Errorf("%q: record %v, want level %s", tt.format, m, tt.want)
		}
	}
}
