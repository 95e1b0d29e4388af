package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/openderp/openderp/key"
)

// rootConfigPath is where the config lives when -c is empty and the
// daemon runs as root.
const rootConfigPath = "/var/lib/derper/derper.key"

// configFile is the on-disk form of the daemon's only persistent state.
type configFile struct {
	PrivateKey key.NodePrivate
}

// errNoConfigPath reports that -c is required.
var errNoConfigPath = errors.New("derper: -c <config path> not specified")

// configPath picks the config file: the -c flag, or rootConfigPath for
// root. It returns errNoConfigPath otherwise.
func configPath(flagPath string, uid int, logf func(string, ...any)) (string, error) {
	if flagPath != "" {
		return flagPath, nil
	}
	if uid == 0 {
		logf("no config path specified; using %s", rootConfigPath)
		return rootConfigPath, nil
	}
	return "", errNoConfigPath
}

// loadConfig reads the private key from path, or, when the file does not
// exist, creates it holding a fresh key.
//
// A file that exists but lacks a key is an error rather than a zero key.
// See docs/compat.md#derper-empty-key.
func loadConfig(path string) (key.NodePrivate, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return writeNewConfig(path)
	}
	if err != nil {
		return key.NodePrivate{}, fmt.Errorf("derper: reading config: %w", err)
	}
	var cfg configFile
	if err := json.Unmarshal(b, &cfg); err != nil {
		return key.NodePrivate{}, fmt.Errorf("derper: config: %s: %w", path, err)
	}
	if cfg.PrivateKey.IsZero() {
		return key.NodePrivate{}, fmt.Errorf("derper: config: %s: missing or zero PrivateKey", path)
	}
	return cfg.PrivateKey, nil
}

// writeNewConfig generates a key and stores it at path atomically: a
// temporary file in the same directory is written, synced and renamed,
// so a crash never leaves a half-written key behind.
func writeNewConfig(path string) (key.NodePrivate, error) {
	priv := key.NewNode()
	b, err := json.MarshalIndent(configFile{PrivateKey: priv}, "", "\t")
	if err != nil {
		return key.NodePrivate{}, fmt.Errorf("derper: encoding config: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return key.NodePrivate{}, fmt.Errorf("derper: creating config directory: %w", err)
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return key.NodePrivate{}, fmt.Errorf("derper: writing config: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// CreateTemp already uses 0600; Chmod makes it explicit for umask-free
	// platforms.
	if err := f.Chmod(0o600); err != nil {
		return key.NodePrivate{}, fmt.Errorf("derper: writing config: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		return key.NodePrivate{}, fmt.Errorf("derper: writing config: %w", err)
	}
	if err := f.Sync(); err != nil {
		return key.NodePrivate{}, fmt.Errorf("derper: writing config: %w", err)
	}
	if err := f.Close(); err != nil {
		return key.NodePrivate{}, fmt.Errorf("derper: writing config: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return key.NodePrivate{}, fmt.Errorf("derper: writing config: %w", err)
	}
	ok = true
	return priv, nil
}
