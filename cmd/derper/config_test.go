package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadConfigCreates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "derper.json")
	priv, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if priv.IsZero() {
		t.Fatal("zero key generated")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	want := "{\n\t\"PrivateKey\": \"" + priv.String() + "\"\n}"
	if string(b) != want {
		t.Errorf("file = %q, want %q", b, want)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want 1 (temp file left?)", len(ents))
	}
	again, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Equal(priv) {
		t.Error("reloaded key differs")
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"broken json", "{", "derper: config:"},
		{"empty key", `{"PrivateKey": ""}`, "derper: config:"},
		{"no key", `{"Other": 1}`, "missing or zero PrivateKey"},
		{"bad key", `{"PrivateKey": "privkey:zz"}`, "derper: config:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := loadConfig(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want containing %q", err, tt.want)
			}
		})
	}
}

func TestConfigPath(t *testing.T) {
	logf := func(string, ...any) {}
	if p, err := configPath("x.json", 1000, logf); p != "x.json" || err != nil {
		t.Errorf("explicit: %q, %v", p, err)
	}
	if p, err := configPath("", 0, logf); p != rootConfigPath || err != nil {
		t.Errorf("root: %q, %v", p, err)
	}
	if _, err := configPath("", 1000, logf); err != errNoConfigPath {
		t.Errorf("non-root: %v", err)
	}
}
