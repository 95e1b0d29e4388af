package latest

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

func noteOutside(what string) {
	outside.mu.Lock()
	defer outside.mu.Unlock()
	for _, s := range outside.seen {
		if s == what {
			return
		}
	}
	outside.seen = append(outside.seen, what)
}

func outsideAttempts() []string {
	outside.mu.Lock()
	defer outside.mu.Unlock()
	return append([]string(nil), outside.seen...)
}

// guardResolver replaces the process's resolver with one that only
// consults /etc/hosts and loopback name servers: a lookup that would ask
// any other server is refused and recorded.
func guardResolver() {
	net.DefaultResolver = &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			if ap, err := netip.ParseAddrPort(address); err == nil && ap.Addr().Unmap().IsLoopback() {
				var d net.Dialer
				return d.DialContext(ctx, network, address)
			}
			noteOutside("DNS query to " + address)
			return nil, fmt.Errorf("interop: name server %s is not on loopback", address)
		},
	}
}

// watchSockets samples the process's sockets every few milliseconds until
// the test ends and records any whose peer is not a loopback address, so
// a TCP connect or connected UDP socket towards the outside is seen even
// when it fails. It works on Linux only, through /proc; elsewhere it does
// nothing.
func watchSockets(t *testing.T) {
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
			noteOutside(fmt.Sprintf("%s socket to %v", proto, peer))
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
// knows, then asks only the first five (see derpRegion).
var harmlessLines = []string{"available captive portal detection endpoints"}

// logTriesOutside reports whether a node's log line shows an attempt to
// leave loopback.
func logTriesOutside(line string) bool {
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

func TestParseProcAddr(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"0100007F:1F90", "127.0.0.1:8080", true},
		{"00000000:0000", "0.0.0.0:0", true},
		{"08080808:0035", "8.8.8.8:53", true},
		{"00000000000000000000000001000000:0050", "[::1]:80", true},
		{"0000000000000000FFFF00000100007F:0016", "[::ffff:127.0.0.1]:22", true},
		{"zz:1", "", false},
		{"0100007F", "", false},
	} {
		got, ok := parseProcAddr(tc.in)
		if ok != tc.ok || (ok && got.String() != tc.want) {
			t.Errorf("parseProcAddr(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
