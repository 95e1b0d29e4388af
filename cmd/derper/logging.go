package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Values of -log-format (openderp only).
const (
	logFormatText = "text" // the reference's plain lines: date, time, message
	logFormatJSON = "json" // one JSON object per line, with attributes
)

// logSettings is what -log-format and -log-level ask for.
type logSettings struct {
	format string
	level  slog.Level
}

// parseLogSettings checks -log-format and -log-level.
func parseLogSettings(format, level string) (logSettings, error) {
	var ls logSettings
	switch format {
	case logFormatText, logFormatJSON:
		ls.format = format
	default:
		return ls, fmt.Errorf("derper: -log-format %q: want %q or %q", format, logFormatText, logFormatJSON)
	}
	switch strings.ToLower(level) {
	case "debug":
		ls.level = slog.LevelDebug
	case "info":
		ls.level = slog.LevelInfo
	case "warn":
		ls.level = slog.LevelWarn
	case "error":
		ls.level = slog.LevelError
	default:
		return ls, fmt.Errorf("derper: -log-level %q: want debug, info, warn or error", level)
	}
	return ls, nil
}

// newLogger returns the logger writing to w as ls says.
func newLogger(w io.Writer, ls logSettings) *slog.Logger {
	if ls.format == logFormatJSON {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: ls.level}))
	}
	return slog.New(&plainHandler{w: w, level: ls.level, mu: new(sync.Mutex)})
}

// plainHandler writes the reference derper's lines: local date and time
// as the log package's standard flags print them, then the message.
// Attributes are left out, as they repeat what the message says; the
// JSON format has them.
type plainHandler struct {
	w     io.Writer
	level slog.Level
	mu    *sync.Mutex // shared by the handlers derived with WithAttrs
}

func (h *plainHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *plainHandler) Handle(_ context.Context, r slog.Record) error {
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	b := make([]byte, 0, 20+len(r.Message)+1)
	b = t.AppendFormat(b, "2006/01/02 15:04:05 ")
	b = append(b, r.Message...)
	if len(r.Message) == 0 || r.Message[len(r.Message)-1] != '\n' {
		b = append(b, '\n')
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.w.Write(b)
	return err
}

func (h *plainHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *plainHandler) WithGroup(string) slog.Handler      { return h }

// printfLogger adapts l to the printf-style log functions the packages
// take; their lines are logged at level.
func printfLogger(l *slog.Logger, level slog.Level) func(string, ...any) {
	return func(format string, args ...any) {
		if !l.Enabled(context.Background(), level) {
			return
		}
		l.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

// logWriter turns each line written to it into a record of l at level,
// for the log.Logger of the HTTP servers.
type logWriter struct {
	l     *slog.Logger
	level slog.Level
}

func (w logWriter) Write(p []byte) (int, error) {
	w.l.Log(context.Background(), w.level, strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
