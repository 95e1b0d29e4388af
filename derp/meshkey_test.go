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
