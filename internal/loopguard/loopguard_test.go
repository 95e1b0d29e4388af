package loopguard

import "testing"

func TestParseProcAddr(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"0100007F:1F90", "127.0.0.1:8080", true},
		{"00000000:0000", "0.0.0.0:0", true},
		{"08080808:0035", "8.8.8.8:53", true},
		{"00000000000000000000000001000000:0050", "[::1]:80", true},
		{"0000000000000000FFFF00000100007F:0016", "[::ffff:127.0.0.1]:22", true},
		{"zz:1", "", false},
		{"0100007F", "", false},
	} {
		got, ok := parseProcAddr(tc.in)
		if ok != tc.ok || (ok && got.String() != tc.want) {
			t.Errorf("parseProcAddr(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestLogTriesOutside(t *testing.T) {
	for line, want := range map[string]bool{
		"netcheck: available captive portal detection endpoints: login.tailscale.com": false,
		"logtail: dial log.tailscale.io: refused":                                     true,
		"portmapper: probing the gateway":                                             true,
		"magicsock: derp-1 connected":                                                 false,
	} {
		if got := LogTriesOutside(line); got != want {
			t.Errorf("LogTriesOutside(%q) = %v; want %v", line, got, want)
		}
	}
}

func TestNoteOnce(t *testing.T) {
	before := len(Attempts())
	Note("test: twice")
	Note("test: twice")
	if got := len(Attempts()) - before; got != 1 {
		t.Errorf("two identical notes recorded %d times; want 1", got)
	}
}
