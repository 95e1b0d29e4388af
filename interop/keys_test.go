package interop

import (
	"encoding/json"
	"testing"

	ourkey "github.com/openderp/openderp/key"
	tskey "tailscale.com/types/key"
)

// Text and JSON forms of every key type written by one implementation
// parse in the other to the same key.
func TestKeyTextBothWays(t *testing.T) {
	for range 20 {
		// Theirs to ours.
		tp := tskey.NewNode()
		var op ourkey.NodePrivate
		if err := op.UnmarshalText(mustText(t, tp)); err != nil {
			t.Fatal(err)
		}
		if got, want := op.Public().String(), tp.Public().String(); got != want {
			t.Fatalf("public keys differ: %s vs %s", got, want)
		}
		if got, want := op.Public().ShortString(), tp.Public().ShortString(); got != want {
			t.Fatalf("ShortString %s vs %s", got, want)
		}
		td := tskey.NewDisco()
		var od ourkey.DiscoPublic
		if err := od.UnmarshalText(mustText(t, td.Public())); err != nil {
			t.Fatal(err)
		}
		if od.String() != td.Public().String() || od.ShortString() != td.Public().ShortString() {
			t.Fatalf("disco %s/%s vs %s/%s", od, od.ShortString(), td.Public(), td.Public().ShortString())
		}
		// Ours to theirs.
		op2 := ourkey.NewNode()
		var tp2 tskey.NodePrivate
		if err := tp2.UnmarshalText(mustText(t, op2)); err != nil {
			t.Fatal(err)
		}
		if tp2.Public().String() != op2.Public().String() {
			t.Fatal("public keys differ")
		}
		var tpub tskey.NodePublic
		if err := tpub.UnmarshalText(mustText(t, op2.Public())); err != nil {
			t.Fatal(err)
		}
		od2 := ourkey.NewDisco().Public()
		var tdp tskey.DiscoPublic
		if err := tdp.UnmarshalText(mustText(t, od2)); err != nil || tdp.String() != od2.String() {
			t.Fatalf("disco ours→theirs: %v", err)
		}
	}
}

// The derper configuration file, {"PrivateKey":"privkey:…"}, written by
// either side is read by the other.
func TestConfigFileJSON(t *testing.T) {
	type ourConfig struct{ PrivateKey ourkey.NodePrivate }
	type theirConfig struct{ PrivateKey tskey.NodePrivate }

	theirs, err := json.MarshalIndent(theirConfig{tskey.NewNode()}, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	var oc ourConfig
	if err := json.Unmarshal(theirs, &oc); err != nil || oc.PrivateKey.IsZero() {
		t.Fatalf("reading their config: %v", err)
	}
	ours, err := json.MarshalIndent(ourConfig{ourkey.NewNode()}, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	var tc theirConfig
	if err := json.Unmarshal(ours, &tc); err != nil || tc.PrivateKey.IsZero() {
		t.Fatalf("reading our config: %v", err)
	}
	if tc.PrivateKey.Public().String() != func() string {
		var o ourConfig
		json.Unmarshal(ours, &o)
		return o.PrivateKey.Public().String()
	}() {
		t.Fatal("config keys differ")
	}
}

func mustText(t *testing.T, k interface{ MarshalText() ([]byte, error) }) []byte {
	t.Helper()
	b, err := k.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
