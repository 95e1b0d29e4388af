package relayload

import (
	"strings"
	"testing"
)

func TestParsePin(t *testing.T) {
	hex64 := strings.Repeat("ab", 32)
	tests := []struct {
		in      string
		wantErr bool
	}{
		{PinPrefix + hex64, false},
		{PinPrefix + strings.ToUpper(hex64), false},
		{hex64, true},
		{"sha256:" + hex64, true},
		{PinPrefix + hex64[:62], true},
		{PinPrefix + hex64 + "00", true},
		{PinPrefix + strings.Repeat("zz", 32), true},
		{"", true},
	}
	for _, tt := range tests {
		sum, err := ParsePin(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParsePin(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
		}
		if err == nil && sum[0] != 0xab {
			t.Errorf("ParsePin(%q) = %x", tt.in, sum)
		}
	}
}

// FuzzParsePin checks that ParsePin never panics and accepts exactly the
// strings that re-encode, case aside, to themselves.
func FuzzParsePin(f *testing.F) {
	f.Add(PinPrefix + strings.Repeat("0f", 32))
	f.Add(PinPrefix)
	f.Add("sha256-raw:zz")
	f.Fuzz(func(t *testing.T, s string) {
		sum, err := ParsePin(s)
		if err != nil {
			return
		}
		again := PinPrefix + strings.ToLower(s[len(PinPrefix):])
		if got, err := ParsePin(again); err != nil || got != sum {
			t.Fatalf("ParsePin(%q) = %x but lower-cased %q gives %x, %v", s, sum, again, got, err)
		}
		if len(s) != len(PinPrefix)+64 {
			t.Fatalf("accepted %q of length %d", s, len(s))
		}
	})
}
