package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openderp/openderp/stun"
	"github.com/openderp/openderp/stun/stunserver"
)

// serve runs a STUN server on a loopback socket of network for the length
// of the test and returns its address.
func serve(t *testing.T, network, host string) netip.AddrPort {
	t.Helper()
	conn, err := net.ListenUDP(network, &net.UDPAddr{IP: net.ParseIP(host)})
	if err != nil {
		if network == "udp6" {
			t.Skipf("IPv6 loopback unavailable: %v", err)
		}
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- stunserver.New(t.Logf).Serve(ctx, conn) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestRun(t *testing.T) {
	tests := []struct {
		network, host, arg string
	}{
		{"udp4", "127.0.0.1", "127.0.0.1"},
		{"udp4", "127.0.0.1", "localhost"},
		{"udp6", "::1", "::1"},
		{"udp6", "::1", "[::1]"},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			addr := serve(t, tt.network, tt.host)
			var out strings.Builder
			err := run(context.Background(), []string{"stunc", tt.arg, fmt.Sprint(addr.Port())}, &out, 5*time.Second)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if len(lines) != 3 {
				t.Fatalf("output %q; want 3 lines", out.String())
			}
			for i, prefix := range []string{"sent addr: ", "from addr: ", "stun addr: "} {
				if !strings.HasPrefix(lines[i], prefix) {
					t.Fatalf("line %d = %q; want prefix %q", i, lines[i], prefix)
				}
				lines[i] = strings.TrimPrefix(lines[i], prefix)
			}
			if lines[0] != addr.String() {
				t.Errorf("sent addr %s; want %v", lines[0], addr)
			}
			from, err := netip.ParseAddrPort(lines[1])
			if err != nil || from.Addr().Unmap() != addr.Addr() || from.Port() != addr.Port() {
				t.Errorf("from addr %s; want %v", lines[1], addr)
			}
			mapped, err := netip.ParseAddrPort(lines[2])
			if err != nil || mapped.Addr() != addr.Addr() || mapped.Port() == 0 {
				t.Errorf("stun addr %s; want %v with our port", lines[2], addr.Addr())
			}
		})
	}
}

func TestRunArgs(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"stunc"}, "usage: stunc <hostname> [port]"},
		{[]string{"stunc", "a", "1", "2"}, "usage: stunc <hostname> [port]"},
		{[]string{"stunc", "127.0.0.1", "65536"}, "invalid port: "},
		{[]string{"stunc", "127.0.0.1", "-1"}, "invalid port: "},
		{[]string{"stunc", "127.0.0.1", "x"}, "invalid port: "},
	}
	for _, tt := range tests {
		err := run(context.Background(), tt.args, new(strings.Builder), time.Second)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("run(%q) = %v; want an error starting %q", tt.args, err, tt.want)
		}
	}
}

// silent returns the address of a loopback UDP socket that reads at most
// one datagram and answers it with reply (nothing if reply is nil).
func silent(t *testing.T, reply func(req []byte) []byte) netip.AddrPort {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil || reply == nil {
			return
		}
		conn.WriteToUDPAddrPort(reply(buf[:n]), from)
	}()
	return conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestRunTimeout(t *testing.T) {
	addr := silent(t, nil)
	start := time.Now()
	err := run(context.Background(), []string{"stunc", "127.0.0.1", fmt.Sprint(addr.Port())}, new(strings.Builder), 100*time.Millisecond)
	if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "no reply from") {
		t.Fatalf("run against a silent server = %v; want a no-reply timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("run took %v with a 100ms timeout", d)
	}
}

func TestRunCancelled(t *testing.T) {
	addr := silent(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"stunc", "127.0.0.1", fmt.Sprint(addr.Port())}, new(strings.Builder), time.Minute)
	}()
	cancel()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("run after cancel = nil; want an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run ignored cancellation")
	}
}

func TestRunBadReply(t *testing.T) {
	tests := []struct {
		name  string
		reply func(req []byte) []byte
		want  error
		text  string
	}{
		{"junk", func([]byte) []byte { return []byte("hello") }, stun.ErrNotSTUN, "bad reply from"},
		{"request echoed", func(req []byte) []byte { return req }, stun.ErrNotSuccessResponse, "bad reply from"},
		{"wrong txid", func([]byte) []byte {
			return stun.Response(stun.TxID{1}, netip.MustParseAddrPort("1.2.3.4:5"))
		}, nil, "txid mismatch: got 010000000000000000000000, want "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := silent(t, tt.reply)
			var out strings.Builder
			err := run(context.Background(), []string{"stunc", "127.0.0.1", fmt.Sprint(addr.Port())}, &out, 5*time.Second)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("run = %v; want %v containing %q", err, tt.want, tt.text)
			}
			if out.Len() != 0 {
				t.Fatalf("run printed %q on failure", out.String())
			}
		})
	}
}

func TestParseCommandLine(t *testing.T) {
	tests := []struct {
		args    []string
		want    []string
		timeout time.Duration
		wantErr string // substring of what is written to errOut
	}{
		{[]string{"stunc", "h"}, []string{"stunc", "h"}, 3 * time.Second, ""},
		{[]string{"stunc", "h", "9"}, []string{"stunc", "h", "9"}, 3 * time.Second, ""},
		{[]string{"stunc", "-timeout", "250ms", "h"}, []string{"stunc", "h"}, 250 * time.Millisecond, ""},
		{[]string{"stunc", "-timeout=0", "h"}, nil, 0, "must be positive"},
		{[]string{"stunc", "-timeout=-1s", "h"}, nil, 0, "must be positive"},
		{[]string{"stunc"}, nil, 0, "usage: stunc <hostname> [port]"},
		{[]string{"stunc", "a", "b", "c"}, nil, 0, "-timeout duration"},
		{[]string{"stunc", "-bogus", "h"}, nil, 0, "flag provided but not defined"},
	}
	for _, tt := range tests {
		var out strings.Builder
		got, timeout, err := parseCommandLine(tt.args, &out)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(out.String(), tt.wantErr) {
				t.Errorf("%q: err %v, output %q; want output containing %q", tt.args, err, out.String(), tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) || timeout != tt.timeout {
			t.Errorf("%q = %q, %v, %v; want %q, %v", tt.args, got, timeout, err, tt.want, tt.timeout)
		}
	}
}

// FuzzParseCommandLine checks that any argument list either parses to one
// or two positional arguments and a positive timeout, or is refused with
// a message, and never panics.
func FuzzParseCommandLine(f *testing.F) {
	f.Add("-timeout\x001s\x00host\x003478")
	f.Add("host")
	f.Add("-timeout=0\x00h")
	f.Fuzz(func(t *testing.T, joined string) {
		args := append([]string{"stunc"}, strings.Split(joined, "\x00")...)
		var out strings.Builder
		got, timeout, err := parseCommandLine(args, &out)
		if err != nil {
			if out.Len() == 0 {
				t.Fatalf("%q refused without a message", args)
			}
			return
		}
		if timeout <= 0 || len(got) < 2 || len(got) > 3 || got[0] != "stunc" {
			t.Fatalf("%q parsed to %q, %v", args, got, timeout)
		}
	})
}
