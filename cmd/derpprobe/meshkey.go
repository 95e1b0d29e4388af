package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// meshKeyEnv holds the mesh key in -dev mode.
const meshKeyEnv = "TAILSCALE_DERPER_MESH_KEY"

// errMeshKeyLength is parseMeshKey's error for text that is not 64
// characters long.
var errMeshKeyLength = errors.New("invalid mesh key: must be 64-digit hexadecimal number")

// parseMeshKey parses a mesh key: surrounding white space is trimmed and
// the rest must be 64 hex digits, of either case. It returns the key in
// lowercase, as clients send it, or "" for empty text. Unlike the
// reference, which takes it for "no key", it rejects the all-zero key.
// See docs/compat.md#prober-mesh-key.
func parseMeshKey(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if len(s) != 64 {
		return "", errMeshKeyLength
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return "", fmt.Errorf("invalid mesh key: %w", err)
	}
	zero := true
	for _, c := range b {
		zero = zero && c == 0
	}
	if zero {
		return "", errors.New("invalid mesh key: all zero")
	}
	return hex.EncodeToString(b), nil
}

// loadMeshKey returns the configured mesh key, "" for none: from the
// environment with -dev, else from -mesh-psk-file. Setec (-secrets-url)
// is not supported.
func loadMeshKey(cfg config) (string, error) {
	var text string
	switch {
	case cfg.dev:
		text = os.Getenv(meshKeyEnv)
	case cfg.secretsURL != "":
		return "", errors.New("-secrets-url: fetching the mesh key from setec is not supported; use -mesh-psk-file")
	case cfg.meshPSKFile != "":
		b, err := os.ReadFile(cfg.meshPSKFile)
		if err != nil {
			return "", err
		}
		text = string(b)
	}
	return parseMeshKey(text)
}
