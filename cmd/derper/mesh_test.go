package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseMeshKey(t *testing.T) {
	good := strings.Repeat("0123456789abcdef", 4)
	tests := []struct {
		in, want, err string
	}{
		{good, good, ""},
		{"  " + good + "\n", good, ""},
		{strings.ToUpper(good), good, ""}, // either case; clients send lowercase
		{good + "00", "", "invalid mesh key: invalid mesh key: must be 64-digit hexadecimal number"},
		{good[:63], "", "invalid mesh key: invalid mesh key: must be 64-digit hexadecimal number"},
		{"", "", "invalid mesh key: invalid mesh key: must be 64-digit hexadecimal number"},
		{" \n\t", "", "invalid mesh key: invalid mesh key: must be 64-digit hexadecimal number"},
		{"g" + good[1:], "", "invalid mesh key: invalid mesh key: encoding/hex: invalid byte: U+0067 'g'"},
		{strings.Repeat("0", 64), "", "invalid mesh key: invalid mesh key: all zeros, which would mean no key"},
	}
	for _, tt := range tests {
		got, err := parseMeshKey(tt.in)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if got != tt.want || gotErr != tt.err {
			t.Errorf("parseMeshKey(%q) = %q, %q; want %q, %q", tt.in, got, gotErr, tt.want, tt.err)
		}
	}
}

// FuzzParseMeshKey: an accepted key is always 64 lowercase hex digits,
// not all zero, and equal to the trimmed input up to case.
func FuzzParseMeshKey(f *testing.F) {
	f.Add(strings.Repeat("ab", 32))
	f.Add(" " + strings.Repeat("AB", 32) + "\n")
	f.Add(strings.Repeat("0", 64))
	f.Add("xyz")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := parseMeshKey(s)
		if err != nil {
			return
		}
		if len(k) != 64 || strings.Trim(k, "0123456789abcdef") != "" || k == strings.Repeat("0", 64) {
			t.Fatalf("accepted %q as %q", s, k)
		}
		if !strings.EqualFold(k, strings.TrimSpace(s)) {
			t.Fatalf("%q became %q", s, k)
		}
	})
}

func TestMeshKeySources(t *testing.T) {
	good := strings.Repeat("ab", 32)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	goodFile := write("good", good+"\n")
	tests := []struct {
		name    string
		dev     bool
		file    string
		env     *string
		want    string
		err     string
		logWant string
	}{
		{"file", false, goodFile, nil, good, "", "Got mesh key from static file"},
		{"no file flag", false, "", nil, "", "", "No mesh key configured"},
		{"empty file", false, write("empty", ""), nil, "", "", "No mesh key configured"},
		{"whitespace file", false, write("ws", " \n"), nil, "", "must be 64-digit", ""},
		{"long file", false, write("long", good+"ab"), nil, "", "must be 64-digit", ""},
		{"missing file", false, filepath.Join(dir, "nope"), nil, "", "reading mesh key file", ""},
		{"dev env", true, goodFile, ptr(strings.ToUpper(good)), good, "", "Set mesh key from TAILSCALE_DERPER_MESH_KEY"},
		{"dev ignores file", true, goodFile, nil, "", "", "No mesh key specified for dev via TAILSCALE_DERPER_MESH_KEY"},
		{"dev bad env", true, "", ptr("nothex"), "", "must be 64-digit", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := opts()
			o.dev, o.meshPSKFile = tt.dev, tt.file
			lookup := func(k string) (string, bool) {
				if k != meshKeyEnv || tt.env == nil {
					return "", false
				}
				return *tt.env, true
			}
			var logs []string
			got, err := meshKey(o, lookup, func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) })
			if got != tt.want {
				t.Errorf("key %q, want %q", got, tt.want)
			}
			if (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
				t.Errorf("error %v, want %q", err, tt.err)
			}
			if tt.logWant != "" && !strings.Contains(strings.Join(logs, "\n"), tt.logWant) {
				t.Errorf("logs %q lack %q", logs, tt.logWant)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestParseMeshWith(t *testing.T) {
	tests := []struct {
		in   string
		want string // host>dial pairs joined by ","
		err  string
	}{
		{"", "", ""},
		{"a.example", "a.example>a.example", ""},
		{"a.example,b.example/10.0.0.2", "a.example>a.example,b.example>10.0.0.2", ""},
		{"127.0.0.1:8443/127.0.0.2", "127.0.0.1:8443>127.0.0.2", ""},
		{"a/b/c", "", `too many components in host tuple "a/b/c"`},
		{"a.example/", "", "empty host"},
		{"a,,b", "", "empty host"},
	}
	for _, tt := range tests {
		ps, err := parseMeshWith(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		var parts []string
		for _, p := range ps {
			parts = append(parts, p.host+">"+p.dialHost)
		}
		if err != nil || strings.Join(parts, ",") != tt.want {
			t.Errorf("%q: %q %v, want %q", tt.in, parts, err, tt.want)
		}
	}
}

// FuzzParseMeshWith: an accepted list has one peer per comma-separated
// entry, each with non-empty host and dial host free of '/'.
func FuzzParseMeshWith(f *testing.F) {
	for _, s := range []string{"", "a", "a/b", "a/b/c", "a,b/c", ",", "a/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := parseMeshWith(s)
		if err != nil || s == "" {
			return
		}
		if len(ps) != strings.Count(s, ",")+1 {
			t.Fatalf("%q: %d peers", s, len(ps))
		}
		for _, p := range ps {
			if p.host == "" || p.dialHost == "" || strings.Contains(p.host+p.dialHost, "/") || strings.Contains(p.host+p.dialHost, ",") {
				t.Fatalf("%q: bad peer %+v", s, p)
			}
		}
	})
}
