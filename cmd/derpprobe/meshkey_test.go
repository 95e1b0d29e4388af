package main

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseMeshKey(t *testing.T) {
	k := strings.Repeat("ab", 32)
	for _, tt := range []struct {
		in, want, wantErr string
	}{
		{"", "", ""},
		{"  \n", "", ""},
		{k, k, ""},
		{" " + strings.ToUpper(k) + "\n", k, ""},
		{k + "00", "", "must be 64-digit hexadecimal number"},
		{k[:62], "", "must be 64-digit hexadecimal number"},
		{"g" + k[1:], "", "invalid byte: U+0067 'g'"},
		{strings.Repeat("0", 64), "", "all zero"},
	} {
		got, err := parseMeshKey(tt.in)
		if got != tt.want || (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("parseMeshKey(%q) = %q, %v; want %q, %q", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func FuzzParseMeshKey(f *testing.F) {
	f.Add(strings.Repeat("ab", 32))
	f.Add(" " + strings.Repeat("0", 63) + "1\n")
	f.Add("xyz")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := parseMeshKey(s)
		if err != nil {
			if k != "" {
				t.Errorf("error %v with key %q", err, k)
			}
			return
		}
		if k == "" {
			if strings.TrimSpace(s) != "" {
				t.Errorf("%q parsed as no key", s)
			}
			return
		}
		// A key is 64 lowercase hex digits, the same bytes as the input.
		b, err := hex.DecodeString(k)
		if err != nil || len(k) != 64 || strings.ToLower(k) != k {
			t.Errorf("parseMeshKey(%q) = %q", s, k)
		}
		in, _ := hex.DecodeString(strings.TrimSpace(s))
		if string(in) != string(b) {
			t.Errorf("parseMeshKey(%q) = %q: different bytes", s, k)
		}
	})
}

func TestMeshKeySources(t *testing.T) {
	k := strings.Repeat("cd", 32)
	file := filepath.Join(t.TempDir(), "psk")
	os.WriteFile(file, []byte(k+"\n"), 0o600)
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("short"), 0o600)
	t.Setenv(meshKeyEnv, strings.Repeat("ef", 32))
	for _, tt := range []struct {
		cfg     config
		want    string
		wantErr string
	}{
		{config{}, "", ""},
		{config{meshPSKFile: file}, k, ""},
		{config{dev: true, meshPSKFile: file}, strings.Repeat("ef", 32), ""},
		{config{meshPSKFile: bad}, "", "must be 64-digit"},
		{config{meshPSKFile: filepath.Join(t.TempDir(), "missing")}, "", "no such file"},
		{config{secretsURL: "https://setec.example"}, "", "not supported"},
	} {
		got, err := loadMeshKey(tt.cfg)
		if got != tt.want || (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("loadMeshKey(%+v) = %q, %v; want %q, %q", tt.cfg, got, err, tt.want, tt.wantErr)
		}
	}
}
