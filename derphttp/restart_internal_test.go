package derphttp

import (
	"testing"
	"time"

	"github.com/openderp/openderp/derp"
)

func TestPlanRestart(t *testing.T) {
	now := time.Unix(1000, 0)
	tests := []struct {
		name       string
		in, tryFor time.Duration
		r          float64
		wantAt     time.Duration // after now
		wantTryFor time.Duration
	}{
		{"no jitter", 2 * time.Second, 10 * time.Second, 0, 2 * time.Second, 10 * time.Second},
		{"most jitter", 2 * time.Second, 10 * time.Second, 0.999999, 2*time.Second + 750*time.Millisecond, 10 * time.Second},
		{"half jitter", 4 * time.Second, time.Second, 0.5, 4*time.Second + 625*time.Millisecond, time.Second},
		{"zero delay still jitters", 0, 0, 0.5, 125 * time.Millisecond, 0},
		{"negative is zero", -time.Second, -time.Second, 0, 0, 0},
		{"huge delay capped", 49 * 24 * time.Hour, 49 * 24 * time.Hour, 0, maxRestartDelay, maxRestartTryFor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := planRestart(derp.ServerRestartingMessage{ReconnectIn: tt.in, TryFor: tt.tryFor}, now, "n1", tt.r)
			if got := p.at.Sub(now); got.Round(time.Millisecond) != tt.wantAt {
				t.Errorf("at = now+%v, want now+%v", got, tt.wantAt)
			}
			if got := p.until.Sub(p.at); got != tt.wantTryFor {
				t.Errorf("until = at+%v, want at+%v", got, tt.wantTryFor)
			}
			if p.node != "n1" {
				t.Errorf("node = %q", p.node)
			}
		})
	}
}
