// Package loopguard keeps tests that run real Tailscale nodes on loopback
// honest: it records every attempt to reach an address that is not on
// this machine, from a guarded resolver, a watch over the process's
// sockets and a scan of the nodes' log lines. The interop test modules use
// it; a test fails when Attempts grows.
package loopguard

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// outside collects every attempt, seen by any guard, to reach an address
// that is not on loopback. A tailnet test fails if it is not empty.
var outside struct {
	mu   sync.Mutex
	seen []string
}

// Note records an attempt to leave loopback, once per distinct text.
func Note(what string) {
	outside.mu.Lock()
	defer outside.mu.Unlock()
	for _, s := range outside.seen {
		if s == what {
			return
		}
	}
	outside.seen = append(outside.seen, what)
}

// Attempts returns every attempt recorded so far, in order.
func Attempts() []string {
	outside.mu.Lock()
	defer outside.mu.Unlock()
	return append([]string(nil), outside.seen...)
}

// GuardResolver replaces the process's resolver with one that only
// consults /etc/hosts and loopback name servers: a lookup that would ask
// any other server is refused and recorded.
func GuardResolver() {
	net.DefaultResolver = &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			if ap, err := netip.ParseAddrPort(address); err == nil && ap.Addr().Unmap().IsLoopback() {
				var d net.Dialer
				return d.DialContext(ctx, network, address)
			}
			Note("DNS query to " + address)
			return nil, fmt.Errorf("loopguard: name server %s is not on loopback", address)
		},
	}
}

// Watch samples the process's sockets every few milliseconds until
// the test ends and records any whose peer is not a loopback address, so
// a TCP connect or connected UDP socket towards the outside is seen even
// when it fails. It works on Linux only, through /proc; elsewhere it does
// nothing.
func Watch(t testing.TB) {
	if _, err := os.Stat("/proc/self/net/tcp"); err != nil {
		t.Logf("socket watch unavailable: %v", err)
		return
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			scanSockets()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() {
		close(done)
		<-stopped
	})
}

// scanSockets records this process's sockets with a non-loopback peer.
func scanSockets() {
	mine := map[string]bool{}
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			mine[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	for _, proto := range []string{"tcp", "tcp6", "udp", "udp6"} {
		f, err := os.Open("/proc/self/net/" + proto)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || !mine[fields[9]] {
				continue
			}
			peer, ok := parseProcAddr(fields[2])
			if !ok || peer.Addr().IsUnspecified() || peer.Addr().Unmap().IsLoopback() {
				continue
			}
			Note(fmt.Sprintf("%s socket to %v", proto, peer))
		}
		f.Close()
	}
}

// parseProcAddr parses an address of /proc/net/{tcp,udp}{,6}: hex bytes
// of the address in 32-bit words of host (little-endian) order, a colon,
// the port in hex.
func parseProcAddr(s string) (netip.AddrPort, bool) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, false
	}
	b, err := hex.DecodeString(a)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return netip.AddrPort{}, false
	}
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	var port uint16
	if _, err := fmt.Sscanf(p, "%X", &port); err != nil {
		return netip.AddrPort{}, false
	}
	addr, _ := netip.AddrFromSlice(b)
	return netip.AddrPortFrom(addr, port), true
}

// outsideMarkers are log fragments that mean a node tried to reach a
// Tailscale service on the internet or probe the gateway.
var outsideMarkers = []string{".tailscale.com", ".tailscale.io", "log.tailscale", "portmapper: ", "UPnP", "NAT-PMP"}

// harmlessLines are log fragments of lines that mention such services
// without reaching them: netcheck lists every captive portal endpoint it
// knows, then asks only the first five (the interop tests put loopback
// decoys first).
var harmlessLines = []string{"available captive portal detection endpoints"}

// LogTriesOutside reports whether a node's log line shows an attempt to
// leave loopback.
func LogTriesOutside(line string) bool {
	for _, h := range harmlessLines {
		if strings.Contains(line, h) {
			return false
		}
	}
	for _, m := range outsideMarkers {
		if strings.Contains(line, m) {
			return true
		}
	}
	return false
}
