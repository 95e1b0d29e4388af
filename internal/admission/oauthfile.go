package admission

import (
	"bytes"
	"errors"
	"fmt"
	"os"
)

// OAuthCredentials are the client credentials of a Tailscale OAuth
// client.
type OAuthCredentials struct {
	ClientID     string
	ClientSecret string
}

// maxOAuthFileSize bounds an OAuth credentials file.
const maxOAuthFileSize = 64 << 10

// ParseOAuthCredentials parses an OAuth credentials file: lines of
// "name = value" (the "=" may be a ":") naming client_id and
// client_secret, each exactly once. A '#' at the start of a line makes it
// a comment; blank lines and white space around names and values are
// ignored. Errors name lines and settings, never values, so the secret
// does not reach a log.
func ParseOAuthCredentials(b []byte) (OAuthCredentials, error) {
	var c OAuthCredentials
	for n := 1; len(b) > 0; n++ {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		i := bytes.IndexAny(line, "=:")
		if i < 0 {
			return OAuthCredentials{}, fmt.Errorf("line %d: want name = value", n)
		}
		name, value := string(bytes.TrimSpace(line[:i])), string(bytes.TrimSpace(line[i+1:]))
		var dst *string
		switch name {
		case "client_id":
			dst = &c.ClientID
		case "client_secret":
			dst = &c.ClientSecret
		default:
			if len(name) > maxQuoted {
				name = name[:maxQuoted] + "…"
			}
			return OAuthCredentials{}, fmt.Errorf("line %d: unknown setting %q (want client_id or client_secret)", n, name)
		}
		if *dst != "" {
			return OAuthCredentials{}, fmt.Errorf("line %d: %s given twice", n, name)
		}
		if value == "" {
			return OAuthCredentials{}, fmt.Errorf("line %d: %s is empty", n, name)
		}
		*dst = value
	}
	switch {
	case c.ClientID == "":
		return OAuthCredentials{}, errors.New("no client_id")
	case c.ClientSecret == "":
		return OAuthCredentials{}, errors.New("no client_secret")
	}
	return c, nil
}

// ReadOAuthCredentials reads and parses the credentials file at path.
func ReadOAuthCredentials(path string) (OAuthCredentials, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return OAuthCredentials{}, fmt.Errorf("reading OAuth credentials: %w", err)
	}
	if fi.Size() > maxOAuthFileSize {
		return OAuthCredentials{}, fmt.Errorf("OAuth credentials %s: larger than %d bytes", path, maxOAuthFileSize)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return OAuthCredentials{}, fmt.Errorf("reading OAuth credentials: %w", err)
	}
	c, err := ParseOAuthCredentials(b)
	if err != nil {
		return OAuthCredentials{}, fmt.Errorf("OAuth credentials %s: %w", path, err)
	}
	return c, nil
}
