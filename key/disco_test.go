package key

import (
	"bytes"
	"testing"
)

func TestNewDiscoClamped(t *testing.T) {
	for range 16 {
		k := NewDisco()
		if !isClamped(k.k) {
			t.Fatalf("NewDisco() = %x; not clamped", k.k)
		}
	}
	if NewDisco().Equal(NewDisco()) {
		t.Error("two NewDisco() keys are Equal")
	}
}

func TestDiscoPublicRFC7748(t *testing.T) {
	priv := DiscoPrivate{k: raw32(t, rfcAlicePriv)}
	if got, want := priv.Public(), DiscoPublicFromRaw32(raw32(t, rfcAlicePub)); got != want {
		t.Errorf("Public() = %v; want %v", got, want)
	}
	if got := (DiscoPrivate{}).Public(); !got.IsZero() {
		t.Errorf("zero disco key Public() = %v; want zero", got)
	}
}

func TestDiscoPrivateEqual(t *testing.T) {
	a := DiscoPrivate{k: raw32(t, rfcAlicePriv)}
	b := a
	b.k[31] ^= 1
	if !a.Equal(a) || a.Equal(b) || a.Equal(DiscoPrivate{}) {
		t.Error("DiscoPrivate.Equal gave a wrong answer")
	}
}

func TestDiscoPublicForms(t *testing.T) {
	raw := raw32(t, rfcBobPub)
	k := DiscoPublicFromRaw32(raw)
	if k.Raw32() != raw {
		t.Errorf("Raw32() = %x; want %x", k.Raw32(), raw)
	}
	if got := k.AppendTo([]byte{9}); !bytes.Equal(got, append([]byte{9}, raw[:]...)) {
		t.Errorf("AppendTo = %x", got)
	}
	if got, want := k.String(), "discokey:"+rfcBobPub; got != want {
		t.Errorf("String() = %q; want %q", got, want)
	}
	if got, want := k.ShortString(), "d:de9edb7d7b7dc1b4"; got != want {
		t.Errorf("ShortString() = %q; want %q", got, want)
	}
	if got := (DiscoPublic{}).ShortString(); got != "" {
		t.Errorf("zero ShortString() = %q; want empty", got)
	}
}
