package main

import (
	"strings"
	"testing"

	"github.com/openderp/openderp/derp"
)

func TestParseRateConfig(t *testing.T) {
	tests := []struct {
		in      string
		want    derp.RateLimit
		wantErr bool
	}{
		{`{"PerClientRateLimitBytesPerSec": 1250000, "PerClientRateBurstBytes": 2000000}`, derp.RateLimit{BytesPerSecond: 1250000, BurstBytes: 2000000}, false},
		{`{"perclientratelimitbytespersec": 10, "Other": "x"}`, derp.RateLimit{BytesPerSecond: 10}, false},
		{`{}`, derp.RateLimit{}, false},
		{`{"PerClientRateLimitBytesPerSec": -1}`, derp.RateLimit{}, true},
		{`{"PerClientRateLimitBytesPerSec": 1.5}`, derp.RateLimit{}, true},
		{`{"PerClientRateBurstBytes": "100"}`, derp.RateLimit{}, true},
		{`not json`, derp.RateLimit{}, true},
		{``, derp.RateLimit{}, true},
	}
	for _, tt := range tests {
		got, err := parseRateConfig([]byte(tt.in))
		if (err != nil) != tt.wantErr || (err == nil && got != tt.want) {
			t.Errorf("parseRateConfig(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "error parsing rate config: ") {
			t.Errorf("error text %q", err)
		}
	}
	if _, err := loadRateConfig("/nonexistent/rate.json"); err == nil || !strings.HasPrefix(err.Error(), "error reading rate config: ") {
		t.Errorf("loadRateConfig(missing) = %v", err)
	}
}

func FuzzParseRateConfig(f *testing.F) {
	f.Add([]byte(`{"PerClientRateLimitBytesPerSec": 1250000, "PerClientRateBurstBytes": 2000000}`))
	f.Add([]byte(`{"PerClientRateLimitBytesPerSec": -1}`))
	f.Add([]byte(`{"perclientrateburstbytes": 1e3}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := parseRateConfig(b)
		if err != nil {
			if l != (derp.RateLimit{}) {
				t.Fatalf("error %v with limit %+v", err, l)
			}
			if !strings.HasPrefix(err.Error(), "error parsing rate config: ") {
				t.Fatalf("error text %q", err)
			}
		}
	})
}

func TestParseAppNames(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"foo", []string{"foo"}},
		{"foo,", []string{"foo"}},
		{"a, b ,,c", []string{"a", "b", "c"}},
		{" , ", nil},
	}
	for _, tt := range tests {
		got := parseAppNames(tt.in)
		if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
			t.Errorf("parseAppNames(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzParseAppNames(f *testing.F) {
	f.Add("a, b ,,c")
	f.Add(",")
	f.Fuzz(func(t *testing.T, list string) {
		for _, n := range parseAppNames(list) {
			if n == "" || n != strings.TrimSpace(n) || strings.Contains(n, ",") {
				t.Fatalf("entry %q from %q", n, list)
			}
		}
	})
}
