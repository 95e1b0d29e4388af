package key

import (
	"bytes"
	"errors"
	"testing"
)

// TestSharedBoxMatchesSealOpen checks that a SharedBox and SealTo/OpenFrom
// interoperate in both directions.
func TestSharedBoxMatchesSealOpen(t *testing.T) {
	alice, bob := rfcKeys(t)
	ag, err := alice.Agreer()
	if err != nil {
		t.Fatal(err)
	}
	sb, err := ag.SharedBox(bob.Public())
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("derp"), 300)} {
		got, ok := bob.OpenFrom(alice.Public(), sb.Seal(msg))
		if !ok || !bytes.Equal(got, msg) {
			t.Errorf("OpenFrom(SharedBox.Seal(%d bytes)) = %d bytes, %v", len(msg), len(got), ok)
		}
		sealed, err := bob.SealTo(alice.Public(), msg)
		if err != nil {
			t.Fatal(err)
		}
		got, ok = sb.Open(sealed)
		if !ok || !bytes.Equal(got, msg) {
			t.Errorf("SharedBox.Open(SealTo(%d bytes)) = %d bytes, %v", len(msg), len(got), ok)
		}
		sealed[len(sealed)-1] ^= 1
		if _, ok := sb.Open(sealed); ok {
			t.Error("SharedBox.Open accepted an altered box")
		}
	}
	if _, ok := sb.Open(make([]byte, BoxOverhead-1)); ok {
		t.Error("SharedBox.Open accepted a short box")
	}
}

func TestSharedBoxRejectsBadKeys(t *testing.T) {
	alice, _ := rfcKeys(t)
	if _, err := (NodePrivate{}).Agreer(); !errors.Is(err, ErrZeroKey) {
		t.Errorf("zero key Agreer error = %v; want ErrZeroKey", err)
	}
	ag, err := alice.Agreer()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ag.SharedBox(NodePublic{}); !errors.Is(err, ErrZeroKey) {
		t.Errorf("SharedBox(zero) error = %v; want ErrZeroKey", err)
	}
	for name, h := range lowOrderPoints {
		if sb, err := ag.SharedBox(NodePublicFromRaw32(raw32(t, h))); err == nil || sb != nil {
			t.Errorf("%s: SharedBox = %v, %v; want an error", name, sb, err)
		}
	}
}
