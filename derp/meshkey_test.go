package derp

import (
	"strings"
	"testing"
)

func TestParseMeshKey(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string
	}{
		{testMeshKey, ""},
		{" \n" + strings.ToUpper(testMeshKey) + "\n", ""},
		{testMeshKey[:63], "invalid mesh key: must be 64-digit hexadecimal number"},
		{testMeshKey + "0", "invalid mesh key: must be 64-digit hexadecimal number"},
		{"g" + testMeshKey[1:], "invalid mesh key: encoding/hex: invalid byte: U+0067 'g'"},
	}
	for _, tt := range tests {
		_, err := ParseMeshKey(tt.in)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.wantErr {
			t.Errorf("ParseMeshKey(%q) error = %q; want %q", tt.in, got, tt.wantErr)
		}
	}
}

func TestMeshKeyMatches(t *testing.T) {
	legacy := testMeshKey + "ff" // 66 digits: accepted by v1.76.3 servers
	tests := []struct {
		name         string
		server, peer string
		want         bool
	}{
		{"same", testMeshKey, testMeshKey, true},
		{"upper-case peer", testMeshKey, strings.ToUpper(testMeshKey), true},
		{"upper-case server", strings.ToUpper(testMeshKey), testMeshKey, true},
		{"different", testMeshKey, testMeshKey[:63] + "0", false},
		{"short peer", testMeshKey, testMeshKey[:62], false},
		{"undecodable peer", testMeshKey, "x" + testMeshKey[1:], false},
		{"empty peer", testMeshKey, "", false},
		{"zero key is no key", strings.Repeat("0", 64), strings.Repeat("0", 64), false},
		{"legacy text key, same", legacy, legacy, true},
		{"legacy text key, other case", legacy, strings.ToUpper(legacy), false},
	}
	for _, tt := range tests {
		if got := meshKeyMatches(tt.server, tt.peer); got != tt.want {
			t.Errorf("%s: meshKeyMatches = %v; want %v", tt.name, got, tt.want)
		}
	}
	if got := wireMeshKey(strings.ToUpper(testMeshKey)); got != testMeshKey {
		t.Errorf("wireMeshKey(upper) = %q; want lower case", got)
	}
	if got := wireMeshKey(legacy); got != legacy {
		t.Errorf("wireMeshKey(legacy) = %q; want unchanged", got)
	}
}

func TestMeshKeyOtherCaseIsMeshPeer(t *testing.T) {
	ts := newTestServer(t)
	ts.s.SetMeshKey(strings.ToUpper(testMeshKey))
	w := ts.dial(t, MeshKey(testMeshKey))
	if err := w.WatchConnectionChanges(); err != nil {
		t.Fatal(err)
	}
	if m, ok := recvMsg(t, w).(PeerPresentMessage); !ok || m.Flags != PeerPresentIsMeshPeer {
		t.Fatalf("got %#v; want own PeerPresent as mesh peer", m)
	}
}

func FuzzParseMeshKey(f *testing.F) {
	f.Add(testMeshKey)
	f.Add(" " + strings.ToUpper(testMeshKey) + "\n")
	f.Add("g" + testMeshKey[1:])
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseMeshKey(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "invalid mesh key: ") {
				t.Fatalf("error text %q", err)
			}
			return
		}
		// A parsed key round-trips through the wire form and matches
		// itself, in either case; the zero key is sent as nothing.
		w := wireMeshKey(strings.TrimSpace(s))
		if k == ([MeshKeyLen]byte{}) {
			if w != "" && len(strings.TrimSpace(s)) == 2*MeshKeyLen {
				t.Fatalf("zero key sent as %q", w)
			}
			return
		}
		if k2, err := ParseMeshKey(w); err != nil || k2 != k || w != strings.ToLower(w) {
			t.Fatalf("wire form %q of %q: %v", w, s, err)
		}
		if !meshKeyMatches(strings.TrimSpace(s), w) {
			t.Fatalf("%q does not match its wire form %q", s, w)
		}
	})
}

func FuzzReadServerEnv(f *testing.F) {
	f.Add("1", "false", "")
	f.Add("yes", "", "zz,")
	f.Fuzz(func(t *testing.T, rtt, card, drops string) {
		env := map[string]string{"TS_DERP_DISABLE_RTT_STATS": rtt, "TS_DERP_SENDER_CARDINALITY": card, "TS_DEBUG_VERBOSE_DROPS": drops}
		e, err := readServerEnv(func(k string) string { return env[k] })
		if err == nil && len(e.verboseDrops) > strings.Count(drops, ",")+1 {
			t.Fatalf("%d keys from %q", len(e.verboseDrops), drops)
		}
		for k := range e.verboseDrops {
			if !strings.Contains(drops, k.UntypedHexString()) && !strings.Contains(strings.ToLower(drops), k.UntypedHexString()) {
				t.Fatalf("key %v not in %q", k, drops)
			}
		}
	})
}
