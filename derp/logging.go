package derp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/openderp/openderp/key"
)

// SetLogger makes the server write its log lines to l as structured
// records instead of to the Logf given to NewServer. A record's message
// is the text Logf would have received; records about one connection
// also carry the attributes "addr" (the remote address), "key" (the
// client's public key in short form) when known, and "err" for a
// failure. Lines that Logf only gets when debug logging is on by
// environment are logged at slog.LevelDebug, so a logger enabled for
// debug shows them. A nil l restores Logf. Call it before the first
// Accept.
func (s *Server) SetLogger(l *slog.Logger) { s.slogger.Store(l) }

// debugLogging reports whether per-connection debug lines are wanted
// beyond those the environment turns on.
func (s *Server) debugLogging() bool {
	l := s.slogger.Load()
	return l != nil && l.Enabled(context.Background(), slog.LevelDebug)
}

// debugLevel says at which level to log a debug line: LevelInfo when
// the environment turned debug lines on for the connection (envOn), as
// the Logf lines were, LevelDebug when the logger wants them anyway. ok
// is false when nobody wants the line.
func (s *Server) debugLevel(envOn bool) (level slog.Level, ok bool) {
	switch {
	case envOn:
		return slog.LevelInfo, true
	case s.debugLogging():
		return slog.LevelDebug, true
	}
	return 0, false
}

// connLog describes the connection a log line is about, if any, and
// further attributes; the zero value means neither.
type connLog struct {
	addr string         // remote address; "" if none
	key  key.NodePublic // client key; zero if not known yet
	err  error          // what failed, if anything

	extra []slog.Attr // more attributes for a structured record
}

// log writes one line at level. Through Logf, lines below LevelInfo are
// dropped: their call sites decide whether the environment wants them
// and then log at LevelInfo.
func (s *Server) log(level slog.Level, c connLog, format string, args ...any) {
	l := s.slogger.Load()
	if l == nil {
		if level >= slog.LevelInfo {
			s.logf.printf(format, args...)
		}
		return
	}
	ctx := context.Background()
	if !l.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 3+len(c.extra))
	if c.addr != "" {
		attrs = append(attrs, slog.String("addr", c.addr))
	}
	if !c.key.IsZero() {
		attrs = append(attrs, slog.String("key", c.key.ShortString()))
	}
	if c.err != nil {
		attrs = append(attrs, slog.String("err", c.err.Error()))
	}
	attrs = append(attrs, c.extra...)
	l.LogAttrs(ctx, level, fmt.Sprintf(format, args...), attrs...)
}

// logConnError logs the error that ended a connection from addr,
// rate-limited per source IP and kind of failure so that one client
// retrying a refused handshake cannot flood the log.
func (s *Server) logConnError(addr string, k key.NodePublic, err error) {
	var ip netip.Addr
	if ap, perr := netip.ParseAddrPort(addr); perr == nil {
		ip = ap.Addr().Unmap()
	}
	if !s.connErrLog.allow(s, ip, connErrorReason(err)) {
		return
	}
	var rej *RejectedError
	if k.IsZero() && errors.As(err, &rej) {
		k = rej.Key
	}
	s.log(slog.LevelInfo, connLog{addr: addr, key: k, err: err}, "derp: %s: %v", addr, err)
}

// connErrorReason sorts an error that ended a connection into a kind for
// rate limiting: an admission refusal by its reason, other failures by
// their class, never by text that differs per connection (ports, keys).
func connErrorReason(err error) string {
	var rej *RejectedError
	switch {
	case errors.As(err, &rej):
		return "rejected: " + rej.Reason
	case errors.Is(err, ErrTooManyConnections):
		return "too many connections"
	case isHandshakeProtocolError(err):
		return "protocol error"
	case isTimeout(err):
		return "timeout"
	case errors.Is(err, io.EOF):
		return "eof"
	}
	return "other"
}

// Limits of the connection error log: per source IP and reason, the
// first logBurst lines of each logInterval are written, the rest counted
// and summed up in one line. At most logMaxSources pairs are tracked;
// beyond that, lines share one bucket per reason.
const (
	logBurst      = 5
	logInterval   = time.Minute
	logMaxSources = 4096
)

// logKey identifies a stream of similar lines. An invalid ip stands for
// every source once the table is full.
type logKey struct {
	ip     netip.Addr
	reason string
}

// logWindow is the state of one logKey.
type logWindow struct {
	start      time.Time // of the current interval
	logged     int       // lines written in it
	suppressed int       // lines counted instead
}

// logLimiter rate-limits connection error lines. The zero value is
// ready to use.
type logLimiter struct {
	now func() time.Time // nil: time.Now; tests replace it

	mu        sync.Mutex
	windows   map[logKey]*logWindow // guarded by mu
	lastSweep time.Time             // guarded by mu
}

func (l *logLimiter) clock() time.Time {
	if l.now != nil {
		return l.now()
	}
	return time.Now()
}

// allow reports whether a line for (ip, reason) may be written. Before a
// new interval of a stream starts, it logs through s how many lines the
// last one suppressed; each suppressed line is counted in s's metrics.
// At most once an interval, any call also sums up and forgets the
// streams whose interval is over.
func (l *logLimiter) allow(s *Server, ip netip.Addr, reason string) bool {
	now := l.clock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.windows == nil {
		l.windows = make(map[logKey]*logWindow)
	}
	if now.Sub(l.lastSweep) >= logInterval {
		// Sum up the streams that went quiet, so their summaries do
		// not wait for the same source to come back.
		l.lastSweep = now
		l.sweepLocked(s, now)
	}
	k := logKey{ip, reason}
	w := l.windows[k]
	if w == nil {
		if len(l.windows) >= logMaxSources {
			l.sweepLocked(s, now)
		}
		if len(l.windows) >= logMaxSources {
			k.ip = netip.Addr{}
			w = l.windows[k]
		}
		if w == nil {
			w = &logWindow{start: now}
			l.windows[k] = w
		}
	}
	if now.Sub(w.start) >= logInterval {
		l.summaryLocked(s, k, w)
		*w = logWindow{start: now}
	}
	if w.logged < logBurst {
		w.logged++
		return true
	}
	w.suppressed++
	s.metrics.logSuppressed.Add(1)
	return false
}

// sweepLocked forgets the streams whose interval is over, summing up
// what they suppressed.
func (l *logLimiter) sweepLocked(s *Server, now time.Time) {
	for k, w := range l.windows {
		if now.Sub(w.start) >= logInterval {
			l.summaryLocked(s, k, w)
			delete(l.windows, k)
		}
	}
}

// flush sums up every stream's suppressed lines and forgets them all.
func (l *logLimiter) flush(s *Server) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, w := range l.windows {
		l.summaryLocked(s, k, w)
	}
	clear(l.windows)
}

func (l *logLimiter) summaryLocked(s *Server, k logKey, w *logWindow) {
	if w.suppressed == 0 {
		return
	}
	from := "many sources"
	if k.ip.IsValid() {
		from = k.ip.String()
	}
	extra := []slog.Attr{slog.Int("suppressed", w.suppressed), slog.String("reason", k.reason), slog.String("source", from)}
	s.log(slog.LevelInfo, connLog{extra: extra}, "derp: suppressed %d similar lines (%s, from %s) in %v", w.suppressed, k.reason, from, logInterval)
}
