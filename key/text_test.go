package key

import (
	"encoding"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// textKey is what the typed key forms have in common.
type textKey interface {
	encoding.TextMarshaler
	encoding.TextAppender
	String() string
}

func TestTextRoundTrip(t *testing.T) {
	priv := NodePrivateFromRaw32(raw32(t, rfcAlicePriv))
	pub := NodePublicFromRaw32(raw32(t, rfcAlicePub))
	disco := DiscoPublicFromRaw32(raw32(t, rfcBobPub))
	tests := []struct {
		name  string
		key   textKey
		want  string
		parse func(text []byte) (any, error)
	}{
		{"privkey", priv, "privkey:" + rfcAlicePriv, func(b []byte) (any, error) {
			var k NodePrivate
			err := k.UnmarshalText(b)
			return k, err
		}},
		{"nodekey", pub, "nodekey:" + rfcAlicePub, func(b []byte) (any, error) {
			var k NodePublic
			err := k.UnmarshalText(b)
			return k, err
		}},
		{"discokey", disco, "discokey:" + rfcBobPub, func(b []byte) (any, error) {
			var k DiscoPublic
			err := k.UnmarshalText(b)
			return k, err
		}},
		{"zero nodekey", NodePublic{}, "nodekey:" + strings.Repeat("0", 64), func(b []byte) (any, error) {
			var k NodePublic
			err := k.UnmarshalText(b)
			return k, err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.key.String(); got != tc.want {
				t.Errorf("String() = %q; want %q", got, tc.want)
			}
			text, err := tc.key.MarshalText()
			if err != nil || string(text) != tc.want {
				t.Errorf("MarshalText() = %q, %v; want %q, nil", text, err, tc.want)
			}
			app, err := tc.key.AppendText([]byte("x="))
			if err != nil || string(app) != "x="+tc.want {
				t.Errorf("AppendText(x=) = %q, %v; want %q, nil", app, err, "x="+tc.want)
			}
			got, err := tc.parse(text)
			if err != nil || got != any(tc.key) {
				t.Errorf("UnmarshalText(%q) = %v, %v; want %v, nil", text, got, err, tc.key)
			}
			// Hex digits are accepted in upper case too; the prefix is not.
			i := strings.IndexByte(tc.want, ':') + 1
			upper := tc.want[:i] + strings.ToUpper(tc.want[i:])
			got, err = tc.parse([]byte(upper))
			if err != nil || got != any(tc.key) {
				t.Errorf("UnmarshalText(%q) = %v, %v; want %v, nil", upper, got, err, tc.key)
			}
		})
	}
}

func TestParseNodePublicUntyped(t *testing.T) {
	want := NodePublicFromRaw32(raw32(t, rfcBobPub))
	for _, s := range []string{rfcBobPub, strings.ToUpper(rfcBobPub)} {
		got, err := ParseNodePublicUntyped(s)
		if err != nil || got != want {
			t.Errorf("ParseNodePublicUntyped(%q) = %v, %v; want %v, nil", s, got, err, want)
		}
	}
	if got := want.UntypedHexString(); got != rfcBobPub {
		t.Errorf("UntypedHexString() = %q; want %q", got, rfcBobPub)
	}
}

func TestParseErrors(t *testing.T) {
	hex64 := rfcAlicePub
	unmarshalPriv := func(s string) error { var k NodePrivate; return k.UnmarshalText([]byte(s)) }
	unmarshalPub := func(s string) error { var k NodePublic; return k.UnmarshalText([]byte(s)) }
	unmarshalDisco := func(s string) error { var k DiscoPublic; return k.UnmarshalText([]byte(s)) }
	untyped := func(s string) error { _, err := ParseNodePublicUntyped(s); return err }
	tests := []struct {
		name   string
		parse  func(string) error
		in     string
		prefix string
		reason string // substring of ParseError.Reason
	}{
		{"priv empty", unmarshalPriv, "", "privkey:", `missing prefix "privkey:"`},
		{"priv given nodekey", unmarshalPriv, "nodekey:" + hex64, "privkey:", `missing prefix "privkey:"`},
		{"priv upper prefix", unmarshalPriv, "PRIVKEY:" + hex64, "privkey:", "missing prefix"},
		{"priv untyped", unmarshalPriv, hex64, "privkey:", "missing prefix"},
		{"priv short", unmarshalPriv, "privkey:" + hex64[:63], "privkey:", "want 64 hex digits, got 63 characters"},
		{"priv long", unmarshalPriv, "privkey:" + hex64 + "0", "privkey:", "got 65 characters"},
		{"priv prefix only", unmarshalPriv, "privkey:", "privkey:", "got 0 characters"},
		{"priv bad hex first", unmarshalPriv, "privkey:g" + hex64[1:], "privkey:", "invalid hex digit at position 8"},
		{"priv bad hex low nibble", unmarshalPriv, "privkey:0z" + hex64[2:], "privkey:", "invalid hex digit at position 9"},
		{"pub given privkey", unmarshalPub, "privkey:" + hex64, "nodekey:", `missing prefix "nodekey:"`},
		{"pub given discokey", unmarshalPub, "discokey:" + hex64, "nodekey:", "missing prefix"},
		{"pub short", unmarshalPub, "nodekey:abc", "nodekey:", "got 3 characters"},
		{"pub bad hex last", unmarshalPub, "nodekey:" + hex64[:63] + "x", "nodekey:", "invalid hex digit at position 71"},
		{"pub space", unmarshalPub, "nodekey: " + hex64[1:], "nodekey:", "position 8"},
		{"pub 0x", unmarshalPub, "nodekey:0x" + hex64[2:], "nodekey:", "position 9"},
		{"disco given nodekey", unmarshalDisco, "nodekey:" + hex64, "discokey:", `missing prefix "discokey:"`},
		{"disco long", unmarshalDisco, "discokey:" + hex64 + hex64, "discokey:", "got 128 characters"},
		{"disco bad hex", unmarshalDisco, "discokey:" + hex64[:10] + "-" + hex64[11:], "discokey:", "position 19"},
		{"untyped typed", untyped, "nodekey:" + hex64, "", "got 72 characters"},
		{"untyped empty", untyped, "", "", "got 0 characters"},
		{"untyped bad hex", untyped, "Q" + hex64[1:], "", "invalid hex digit at position 0"},
		{"untyped non-ascii", untyped, "é" + hex64[2:], "", "invalid hex digit at position 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.parse(tc.in)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("parse(%q) = %v; want *ParseError", tc.in, err)
			}
			if pe.Prefix != tc.prefix || !strings.Contains(pe.Reason, tc.reason) {
				t.Errorf("parse(%q) = %+v; want prefix %q, reason containing %q", tc.in, pe, tc.prefix, tc.reason)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "key: parsing ") || !strings.Contains(msg, pe.Reason) {
				t.Errorf("Error() = %q; want it to start with \"key: parsing \" and carry the reason", msg)
			}
			// The input may be a secret: the message must not echo it.
			if len(tc.in) >= 16 && strings.Contains(msg, tc.in[len(tc.in)-16:]) {
				t.Errorf("Error() = %q echoes the input", msg)
			}
		})
	}
}

func TestUnmarshalTextErrorLeavesKey(t *testing.T) {
	k := NodePublicFromRaw32(raw32(t, rfcAlicePub))
	before := k
	if err := k.UnmarshalText([]byte("nodekey:" + rfcBobPub[:63] + "x")); err == nil {
		t.Fatal("UnmarshalText accepted a bad digit")
	}
	if k != before {
		t.Errorf("failed UnmarshalText changed the key to %v", k)
	}
}

type keyDoc struct {
	Private NodePrivate
	Public  NodePublic
	Disco   DiscoPublic
	Zero    NodePublic
	Peers   map[NodePublic]string
}

func TestJSON(t *testing.T) {
	priv := NodePrivateFromRaw32(raw32(t, rfcAlicePriv))
	in := keyDoc{
		Private: priv,
		Public:  priv.Public(),
		Disco:   DiscoPublicFromRaw32(raw32(t, rfcBobPub)),
		Peers:   map[NodePublic]string{NodePublicFromRaw32(raw32(t, rfcBobPub)): "bob"},
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Private":"privkey:` + rfcAlicePriv + `","Public":"nodekey:` + rfcAlicePub +
		`","Disco":"discokey:` + rfcBobPub + `","Zero":"nodekey:` + strings.Repeat("0", 64) +
		`","Peers":{"nodekey:` + rfcBobPub + `":"bob"}}`
	if string(b) != want {
		t.Errorf("json.Marshal = %s; want %s", b, want)
	}
	var out keyDoc
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("json.Unmarshal(%s): %v", b, err)
	}
	if !out.Private.Equal(in.Private) || out.Public != in.Public || out.Disco != in.Disco || !out.Zero.IsZero() || out.Peers[NodePublicFromRaw32(raw32(t, rfcBobPub))] != "bob" {
		t.Errorf("json round trip = %+v; want %+v", out, in)
	}

	bad := `{"Public":"privkey:` + rfcAlicePriv + `"}`
	err = json.Unmarshal([]byte(bad), &out)
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Prefix != "nodekey:" {
		t.Errorf("json.Unmarshal(%s) = %v; want *ParseError for nodekey:", bad, err)
	}
	if err := json.Unmarshal([]byte(`{"Public":12}`), &out); err == nil {
		t.Error("json.Unmarshal of a number into NodePublic succeeded")
	}
}

// FuzzParseText checks every text parser on arbitrary input: no panic, an
// error is always a *ParseError, and what parses prints back as the input
// in lower case and parses to the same key.
func FuzzParseText(f *testing.F) {
	for _, s := range []string{
		"privkey:" + rfcAlicePriv, "nodekey:" + rfcAlicePub, "discokey:" + rfcBobPub, rfcBobPub,
		"nodekey:" + strings.ToUpper(rfcAlicePub), "nodekey:", "privkey:" + rfcAlicePriv[:63] + "g",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		check := func(err error, printed string, reparse func(string) (any, error), k any) {
			t.Helper()
			if err != nil {
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("parse(%q) = %v; want *ParseError", s, err)
				}
				return
			}
			if printed != strings.ToLower(s) {
				t.Fatalf("parse(%q) prints as %q", s, printed)
			}
			if k2, err := reparse(printed); err != nil || k2 != k {
				t.Fatalf("reparse(%q) = %v, %v; want %v", printed, k2, err, k)
			}
		}
		var priv NodePrivate
		check(priv.UnmarshalText([]byte(s)), priv.String(), func(s string) (any, error) {
			var k NodePrivate
			err := k.UnmarshalText([]byte(s))
			return k, err
		}, priv)
		var pub NodePublic
		check(pub.UnmarshalText([]byte(s)), pub.String(), func(s string) (any, error) {
			var k NodePublic
			err := k.UnmarshalText([]byte(s))
			return k, err
		}, pub)
		var disco DiscoPublic
		check(disco.UnmarshalText([]byte(s)), disco.String(), func(s string) (any, error) {
			var k DiscoPublic
			err := k.UnmarshalText([]byte(s))
			return k, err
		}, disco)
		up, err := ParseNodePublicUntyped(s)
		check(err, up.UntypedHexString(), func(s string) (any, error) { return ParseNodePublicUntyped(s) }, up)
	})
}
