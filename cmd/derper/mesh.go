package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
)

var meshKeyPattern = regexp.MustCompile(`^[0-9a-fA-F]{64,}$`)

// readMeshKey returns the trimmed contents of the mesh key file, which
// must be 64 or more hex digits.
func readMeshKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("derper: reading mesh key: %w", err)
	}
	k := strings.TrimSpace(string(b))
	if !meshKeyPattern.MatchString(k) {
		return "", fmt.Errorf("key in %s must contain 64+ hex digits", path)
	}
	return k, nil
}

// startMesh connects to every host of the comma-separated list with the
// server's own key and the mesh key, and registers each client seen there
// as reachable through that connection. The loops end with ctx.
func startMesh(ctx context.Context, s *derp.Server, meshWith string, logf func(string, ...any)) error {
	if meshWith == "" {
		return nil
	}
	if !s.HasMeshKey() {
		return errors.New("--mesh-with requires --mesh-psk-file")
	}
	for _, host := range strings.Split(meshWith, ",") {
		if err := startMeshPeer(ctx, s, host, logf); err != nil {
			return err
		}
	}
	return nil
}

func startMeshPeer(ctx context.Context, s *derp.Server, host string, logf func(string, ...any)) error {
	plogf := meshLogf(logf, host)
	c, err := derphttp.NewClient(s.PrivateKey(), "https://"+host+"/derp", plogf)
	if err != nil {
		return err
	}
	c.MeshKey = s.MeshKey()
	c.WatchConnectionChanges = true
	c.BaseContext = func() context.Context { return ctx }
	c.SetURLDialer(meshDialer(plogf))
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

// meshDialer dials mesh peers. For Tailscale's own *.tailscale.com:443
// nodes it first tries the private "<name>-vpc" address, falling back to
// the public one.
func meshDialer(logf func(string, ...any)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if prefix, ok := strings.CutSuffix(host, ".tailscale.com"); ok && port == "443" {
			vpc := prefix + "-vpc.tailscale.com"
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			ips, err := net.DefaultResolver.LookupIP(rctx, "ip", vpc)
			if err == nil && len(ips) > 0 {
				var c net.Conn
				c, err = d.DialContext(rctx, network, net.JoinHostPort(ips[0].String(), port))
				if err == nil {
					cancel()
					logf("connected to %v (%v) instead of %v", vpc, ips[0], host)
					return c, nil
				}
			}
			cancel()
			logf("failed to connect to %v: %v; using %v", vpc, err, host)
		}
		return d.DialContext(ctx, network, addr)
	}
}

// meshLogf prefixes logf's lines with the mesh peer's host. The host is an
// argument, never part of the format, so a '%' in it cannot garble a line.
func meshLogf(logf func(string, ...any), host string) func(string, ...any) {
	return func(format string, args ...any) {
		logf("mesh(%q): %s", host, fmt.Sprintf(format, args...))
	}
}
