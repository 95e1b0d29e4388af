package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

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

// applyRateConfig loads path into s and registers its reload on hub. A
// failed first load is returned; a failed reload is logged and keeps the
// limit in force.
func applyRateConfig(s *derp.Server, path string, hub *reloadHub, lg *slog.Logger) error {
	logf := printfLogger(lg, slog.LevelInfo)
	l, err := loadRateConfig(path)
	if err != nil {
		return err
	}
	s.SetPerClientRateLimit(l)
	logRateLimit(s, logf)
	hub.add("rate config", func() {
		l, err := loadRateConfig(path)
		if err != nil {
			lg.Warn(fmt.Sprintf("derper: rate config not reloaded: %v", err))
			return
		}
		s.SetPerClientRateLimit(l)
		logRateLimit(s, logf)
	})
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
