package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/openderp/openderp/derp"
)

// rateConfig is the -rate-config file: per-client receive limits in
// bytes. Keys match case-insensitively and unknown keys are ignored, as
// with encoding/json; negative or fractional values do not parse.
type rateConfig struct {
	PerClientRateLimitBytesPerSec uint64
	PerClientRateBurstBytes       uint64
}

// parseRateConfig parses the contents of a -rate-config file.
func parseRateConfig(b []byte) (derp.RateLimit, error) {
	var rc rateConfig
	if err := json.Unmarshal(b, &rc); err != nil {
		return derp.RateLimit{}, fmt.Errorf("error parsing rate config: %w", err)
	}
	return derp.RateLimit{BytesPerSecond: rc.PerClientRateLimitBytesPerSec, BurstBytes: rc.PerClientRateBurstBytes}, nil
}

// loadRateConfig reads and parses the file at path.
func loadRateConfig(path string) (derp.RateLimit, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return derp.RateLimit{}, fmt.Errorf("error reading rate config: %w", err)
	}
	return parseRateConfig(b)
}

// applyRateConfig loads path into s, then reloads it on every SIGHUP
// until ctx ends. A failed first load is returned; a failed reload is
// logged and keeps the limit in force. Without -rate-config nothing
// catches SIGHUP, which then ends the process as it always has.
func applyRateConfig(ctx context.Context, s *derp.Server, path string, logf func(string, ...any)) error {
	l, err := loadRateConfig(path)
	if err != nil {
		return err
	}
	s.SetPerClientRateLimit(l)
	logRateLimit(s, logf)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			l, err := loadRateConfig(path)
			if err != nil {
				logf("derper: rate config not reloaded: %v", err)
				continue
			}
			s.SetPerClientRateLimit(l)
			logRateLimit(s, logf)
		}
	}()
	return nil
}

func logRateLimit(s *derp.Server, logf func(string, ...any)) {
	l := s.PerClientRateLimit()
	if l.BytesPerSecond == 0 {
		logf("derper: per-client rate limit off")
		return
	}
	logf("derper: per-client rate limit %d bytes/s, burst %d bytes", l.BytesPerSecond, l.BurstBytes)
}
