package derpmap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

// maxMapSize bounds how much Fetch reads; real maps are tens of KiB.
const maxMapSize = 4 << 20

// DefaultTailscaledSocket is where Fetch looks for tailscaled when asked
// for the "local" map.
const DefaultTailscaledSocket = "/var/run/tailscale/tailscaled.sock"

// ErrNoTailscaled is returned by Fetch for the "local" source when no
// tailscaled answers on its socket.
var ErrNoTailscaled = errors.New("derpmap: no tailscaled to ask for the local DERP map")

// Fetch loads a DERP map from src, which is one of:
//
//   - an https:// or http:// URL, fetched with GET; any status but 200 is
//     an error;
//   - a file:// URL naming a local JSON file;
//   - "local", the map of the tailscaled on this machine, read through its
//     local API socket (ErrNoTailscaled if it is not running).
//
// The map is decoded but not validated; see Map.Validate.
func Fetch(ctx context.Context, src string) (*Map, error) {
	if src == "local" {
		return fetchLocal(ctx, DefaultTailscaledSocket)
	}
	u, err := url.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("derpmap: parsing source URL: %w", err)
	}
	switch u.Scheme {
	case "http", "https":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
		if err != nil {
			return nil, fmt.Errorf("derpmap: fetching %s: %w", src, err)
		}
		return fetchHTTP(http.DefaultClient, req, src)
	case "file":
		path := u.Path
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("derpmap: file URL %q names a remote host", src)
		}
		if path == "" {
			path = u.Opaque
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("derpmap: reading map: %w", err)
		}
		defer f.Close()
		m, err := Decode(f)
		if err != nil {
			return nil, fmt.Errorf("derpmap: %s: %w", path, err)
		}
		return m, nil
	default:
		return nil, fmt.Errorf("derpmap: unsupported source %q (want https://, http://, file:// or \"local\")", src)
	}
}

// Decode reads one JSON DERP map from r.
func Decode(r io.Reader) (*Map, error) {
	var m Map
	dec := json.NewDecoder(io.LimitReader(r, maxMapSize))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decoding DERP map: %w", err)
	}
	return &m, nil
}

func fetchHTTP(hc *http.Client, req *http.Request, what string) (*Map, error) {
	res, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("derpmap: fetching %s: %w", what, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return nil, fmt.Errorf("derpmap: fetching %s: %s: %q", what, res.Status, body)
	}
	m, err := Decode(res.Body)
	if err != nil {
		return nil, fmt.Errorf("derpmap: %s: %w", what, err)
	}
	return m, nil
}

func fetchLocal(ctx context.Context, sock string) (*Map, error) {
	if _, err := os.Stat(sock); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoTailscaled, err)
	}
	hc := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
		},
	}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://local-tailscaled.sock/localapi/v0/derpmap", nil)
	if err != nil {
		return nil, err
	}
	// tailscaled's local API refuses requests without this host.
	req.Host = "local-tailscaled.sock"
	m, err := fetchHTTP(hc, req, "tailscaled local API")
	if err != nil {
		var ne *net.OpError
		if errors.As(err, &ne) {
			return nil, fmt.Errorf("%w: %w", ErrNoTailscaled, err)
		}
		return nil, err
	}
	return m, nil
}
