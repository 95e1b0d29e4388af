package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
)

// meshKeyEnv holds the mesh key in -dev mode, where key files are ignored.
const meshKeyEnv = "TAILSCALE_DERPER_MESH_KEY"

var (
	errMeshKeyLength = errors.New("invalid mesh key: must be 64-digit hexadecimal number")
	errMeshKeyZero   = errors.New("invalid mesh key: all zeros, which would mean no key")
)

// parseMeshKey checks a mesh key as today's derper does: after trimming
// whitespace, exactly 64 hex digits of either case. It returns the key in
// lowercase, the form clients send. The all-zero key is refused: the
// reference silently takes it for "no key".
// See docs/compat.md#derper-mesh-key-file.
func parseMeshKey(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) != 64 {
		return "", fmt.Errorf("invalid mesh key: %w", errMeshKeyLength)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return "", fmt.Errorf("invalid mesh key: invalid mesh key: %w", err)
	}
	if bytes.Count(b, []byte{0}) == len(b) {
		return "", fmt.Errorf("invalid mesh key: %w", errMeshKeyZero)
	}
	return strings.ToLower(s), nil
}

// meshKey finds the mesh key: in -dev mode only from the environment
// (lookupEnv), otherwise only from the -mesh-psk-file file. An unset
// variable, an empty -mesh-psk-file or an empty file means no key ("").
func meshKey(o *options, lookupEnv func(string) (string, bool), logf func(string, ...any)) (string, error) {
	var text string
	if o.dev {
		v, ok := lookupEnv(meshKeyEnv)
		if !ok {
			logf("No mesh key specified for dev via %s", meshKeyEnv)
			logf("No mesh key configured for --dev mode")
			return "", nil
		}
		logf("Set mesh key from %s", meshKeyEnv)
		text = v
	} else {
		if o.meshPSKFile == "" {
			logf("No mesh key configured")
			return "", nil
		}
		b, err := os.ReadFile(o.meshPSKFile)
		if err != nil {
			return "", fmt.Errorf("derper: reading mesh key file: %w", err)
		}
		if len(b) == 0 {
			logf("mesh key file %s is empty; no mesh key", o.meshPSKFile)
			logf("No mesh key configured")
			return "", nil
		}
		logf("Got mesh key from static file")
		text = string(b)
	}
	k, err := parseMeshKey(text)
	if err != nil {
		return "", err
	}
	logf("DERP mesh key configured")
	return k, nil
}

// meshPeer is one entry of -mesh-with: the name used in the URL, for SNI
// and for verification, and the host actually dialed.
type meshPeer struct {
	host, dialHost string
}

// parseMeshWith splits the comma-separated -mesh-with list. Each entry is
// "host" or "host/dialhost"; entries are not trimmed, as in the reference.
func parseMeshWith(s string) ([]meshPeer, error) {
	if s == "" {
		return nil, nil
	}
	var peers []meshPeer
	for _, e := range strings.Split(s, ",") {
		host, dial, found := strings.Cut(e, "/")
		if !found {
			dial = host
		} else if strings.Contains(dial, "/") {
			return nil, fmt.Errorf("too many components in host tuple %q", e)
		}
		if host == "" || dial == "" {
			return nil, fmt.Errorf("empty host in mesh entry %q", e)
		}
		peers = append(peers, meshPeer{host: host, dialHost: dial})
	}
	return peers, nil
}

// startMesh connects to every peer with the server's own key and the mesh
// key, and registers each client seen there as reachable through that
// connection. Each peer's lines carry its host as the attribute "peer",
// and the first time its connection is up is a startup stage line. The
// loops end with ctx.
func startMesh(ctx context.Context, s *derp.Server, peers []meshPeer, lg *slog.Logger) error {
	if len(peers) == 0 {
		return nil
	}
	if !s.HasMeshKey() {
		return errors.New("--mesh-with requires --mesh-psk-file")
	}
	for _, p := range peers {
		if err := startMeshPeer(ctx, s, p, lg); err != nil {
			return err
		}
	}
	return nil
}

func startMeshPeer(ctx context.Context, s *derp.Server, p meshPeer, lg *slog.Logger) error {
	plogf := meshLevels(lg.With("peer", p.host), p.host)
	c, err := derphttp.NewClient(s.PrivateKey(), "https://"+p.host+"/derp", plogf)
	if err != nil {
		return err
	}
	c.MeshKey = s.MeshKey()
	c.WatchConnectionChanges = true
	c.BaseContext = func() context.Context { return ctx }
	var first sync.Once
	c.OnWatchConnect = func() {
		first.Do(func() {
			logStage(lg, stageMesh, fmt.Sprintf("derper: mesh peer %q connected", p.host), "peer", p.host)
		})
	}
	if p.dialHost != p.host {
		plogf("will dial %q for %q", p.dialHost, p.host)
		c.SetURLDialer(meshDialer(p.dialHost, plogf))
	}
	add := func(m derp.PeerPresentMessage) { s.AddPacketForwarder(m.Key, c) }
	remove := func(m derp.PeerGoneMessage) { s.RemovePacketForwarder(m.Peer, c) }
	go func() {
		c.RunWatchConnectionLoop(ctx, s.PublicKey(), plogf, add, remove)
		// The loop also returns at once when host is this node; that
		// connection stays up, harmlessly, until shutdown.
		<-ctx.Done()
		c.Close()
	}()
	return nil
}

// meshDialer dials dialHost instead of the host of the mesh URL, keeping
// the URL's port. TLS still uses the URL's host name.
func meshDialer(dialHost string, logf func(string, ...any)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		to := net.JoinHostPort(dialHost, port)
		logf("dialing %q instead of %q", to, addr)
		return d.DialContext(ctx, network, to)
	}
}

// meshLogf prefixes logf's lines with the mesh peer's host. The host is an
// argument, never part of the format, so a '%' in it cannot garble a line.
func meshLogf(logf func(string, ...any), host string) func(string, ...any) {
	return func(format string, args ...any) {
		logf("mesh(%q): %s", host, fmt.Sprintf(format, args...))
	}
}

// meshLevels logs the lines about mesh peer host, prefixed as meshLogf
// does, at info level, except failures to reach it, which are warnings.
func meshLevels(l *slog.Logger, host string) func(string, ...any) {
	info := meshLogf(printfLogger(l, slog.LevelInfo), host)
	warn := meshLogf(printfLogger(l, slog.LevelWarn), host)
	return func(format string, args ...any) {
		if strings.HasPrefix(format, "mesh connect:") || strings.HasPrefix(format, "recv error:") {
			warn(format, args...)
			return
		}
		info(format, args...)
	}
}
