package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/key"
)

// fromDialer returns a dial function that connects to addr from the
// loopback address from and, if hdr is not empty, writes hdr first, as a
// load balancer would.
func fromDialer(from, addr string, hdr []byte) func(ctx context.Context, network, _ string) (net.Conn, error) {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if len(hdr) > 0 {
			if _, err := c.Write(hdr); err != nil {
				c.Close()
				return nil, err
			}
		}
		return c, nil
	}
}

// proxyClient connects a DERP client to url through dial.
func proxyClient(t *testing.T, url string, tcfg *tls.Config, dial func(context.Context, string, string) (net.Conn, error)) (*derphttp.Client, error) {
	t.Helper()
	c, err := derphttp.NewClient(key.NewNode(), url, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.TLSConfig = tcfg
	c.SetURLDialer(dial)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// sendAndReceive sends a packet from c2 to c1 and waits for it. The
// receiver may not be registered yet when Connect returns (the server may
// still be asking the admission controller), so it resends until one
// arrives.
func sendAndReceive(t *testing.T, c1, c2 *derphttp.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	sendUntilReceived(t, ctx, c1, c2, "through the balancer")
}

// clientRemotes returns the remote addresses on the clients debug page,
// asked from 127.0.0.9, an untrusted loopback address (no header needed,
// and loopback may see /debug/).
func clientRemotes(t *testing.T, base string, tcfg *tls.Config) []string {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext:     fromDialer("127.0.0.9", strings.TrimPrefix(strings.TrimPrefix(base, "http://"), "https://"), nil),
		TLSClientConfig: tcfg,
	}}
	defer hc.CloseIdleConnections()
	_, body := httpGet(t, hc, base+"/debug/clients/?all&format=json")
	var page struct{ Clients []struct{ Remote string } }
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatalf("clients page: %v %q", err, body)
	}
	var out []string
	for _, c := range page.Clients {
		out = append(out, c.Remote)
	}
	return out
}

// proxyVarz returns the proxy_protocol metrics from /debug/varz as
// name{labels} -> value.
func proxyVarz(t *testing.T, base string, tcfg *tls.Config) map[string]int64 {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext:     fromDialer("127.0.0.9", strings.TrimPrefix(strings.TrimPrefix(base, "http://"), "https://"), nil),
		TLSClientConfig: tcfg,
	}}
	defer hc.CloseIdleConnections()
	_, body := httpGet(t, hc, base+"/debug/varz")
	out := map[string]int64{}
	for _, m := range regexp.MustCompile(`(?m)^proxy_protocol_(\S+) (\d+)$`).FindAllStringSubmatch(body, -1) {
		out[m[1]], _ = strconv.ParseInt(m[2], 10, 64)
	}
	if len(out) == 0 {
		t.Fatalf("no proxy_protocol metrics in /debug/varz:\n%s", body)
	}
	return out
}

// refusedWithoutAnswer dials addr from from, writes msg and requires the
// server to close the connection without answering.
func refusedWithoutAnswer(t *testing.T, from, addr, msg string) {
	t.Helper()
	c, err := fromDialer(from, addr, nil)(t.Context(), "tcp", "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, msg)
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%q from %s: connection left open", msg, from)
	}
	if len(b) != 0 {
		t.Errorf("%q from %s: answered %q, want a close", msg, from, b)
	}
}

// TestE2EProxyProtocolHeaders runs the real binary with
// -proxy-protocol-from and hand-written headers: the clients' addresses
// come from the headers (debug page, per-IP limit), a header from an
// untrusted address and a trusted connection without one are refused and
// counted. The admission controller is told the header's address.
func TestE2EProxyProtocolHeaders(t *testing.T) {
	sources := make(chan string, 10)
	admission := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Source string }
		json.NewDecoder(r.Body).Decode(&req)
		select {
		case sources <- req.Source:
		default:
		}
		io.WriteString(w, `{"Allow": true}`)
	}))
	defer admission.Close()
	port := freePort(t, "tcp")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	d := startDerper(t, nil, "-a", addr, "-c", filepath.Join(t.TempDir(), "c.json"), "-stun=false",
		"-proxy-protocol-from", "127.0.0.1/32", "-max-conns-per-ip", "1", "-verify-client-url", admission.URL)
	base := "http://" + addr
	url := base + "/derp"

	v1 := fmt.Sprintf("PROXY TCP4 192.0.2.44 127.0.0.1 40044 %d\r\n", port)
	c1, err := proxyClient(t, url, nil, fromDialer("127.0.0.1", addr, []byte(v1)))
	if err != nil {
		t.Fatalf("client behind a v1 header: %v", err)
	}
	v2 := v2Header(0x21, 0x21, v6Block("2001:db8::45", "::1", 40045, uint16(port)))
	c2, err := proxyClient(t, url, nil, fromDialer("127.0.0.1", addr, v2))
	if err != nil {
		t.Fatalf("client behind a v2 header: %v (both come from 127.0.0.1: was the header ignored?)", err)
	}
	sendAndReceive(t, c1, c2)
	// A client may be asked about more than once (a redial while the
	// first packet is resent), so wait until both addresses were seen and
	// fail on any other.
	seen := map[string]bool{}
	timeout := time.After(10 * time.Second)
	for !seen["192.0.2.44"] || !seen["2001:db8::45"] {
		select {
		case got := <-sources:
			if got != "192.0.2.44" && got != "2001:db8::45" {
				t.Fatalf("admission controller was told %q, want one of the headers' addresses", got)
			}
			seen[got] = true
		case <-timeout:
			t.Fatalf("admission controller asked about %v, want both 192.0.2.44 and 2001:db8::45", seen)
		}
	}

	remotes := strings.Join(clientRemotes(t, base, nil), " ")
	for _, want := range []string{"192.0.2.44:40044", "[2001:db8::45]:40045"} {
		if !strings.Contains(remotes, want) {
			t.Errorf("clients page remotes %q lack %s", remotes, want)
		}
	}

	// The per-IP limit counts the header's address: a second
	// connection claiming 192.0.2.44 is one too many.
	v1b := fmt.Sprintf("PROXY TCP4 192.0.2.44 127.0.0.1 40046 %d\r\n", port)
	if _, err := proxyClient(t, url, nil, fromDialer("127.0.0.1", addr, []byte(v1b))); err == nil {
		t.Error("a second connection from 192.0.2.44 passed -max-conns-per-ip 1")
	}

	refusedWithoutAnswer(t, "127.0.0.3", addr, v1+"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	refusedWithoutAnswer(t, "127.0.0.1", addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")

	m := proxyVarz(t, base, nil)
	if m[`refused{reason="untrusted_header"}`] != 1 || m[`refused{reason="missing_header"}`] != 1 || m["proxied_connections"] != 3 {
		t.Errorf("proxy_protocol metrics: %v", m)
	}
	d.stop(t)
}

// haproxyPath returns an HAProxy binary, installing it through
// scripts/haproxy.sh if needed, or skips the test.
func haproxyPath(t *testing.T) string {
	script, _ := filepath.Abs("../../scripts/haproxy.sh")
	out, err := exec.Command(script).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 3 {
		t.Skipf("no HAProxy: %s", ee.Stderr)
	}
	if err != nil {
		t.Fatalf("scripts/haproxy.sh: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// haproxyConfig is a TCP-mode HAProxy with two frontends, on inherited
// descriptors 3 and 4, in front of one derper: the first sends PROXY v1
// headers, the second v2.
const haproxyConfig = `global
	maxconn 200

defaults
	mode tcp
	timeout connect 5s
	timeout client 60s
	timeout server 60s

frontend derp_v1
	bind fd@3
	default_backend derper_v1

frontend derp_v2
	bind fd@4
	default_backend derper_v2

backend derper_v1
	server derper %[1]s send-proxy

backend derper_v2
	server derper %[1]s send-proxy-v2
`

// startHAProxy runs HAProxy in the foreground with haproxyConfig in
// front of derperAddr and returns the addresses of its v1 and v2
// frontends. The test binds them, so they accept from the start.
func startHAProxy(t *testing.T, bin, derperAddr string) (v1, v2 string) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, haproxyConfig, derperAddr), 0o600); err != nil {
		t.Fatal(err)
	}
	var files []*os.File
	var addrs []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		ln.Close() // the duplicate in f keeps the socket listening
		files = append(files, f)
	}
	cmd := exec.Command(bin, "-db", "-f", cfg)
	cmd.ExtraFiles = files
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		f.Close()
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Error("HAProxy did not exit")
		}
		if t.Failed() {
			t.Logf("HAProxy output:\n%s", stderr.String())
		}
	})
	return addrs[0], addrs[1]
}

// TestE2EProxyProtocolHAProxy puts a real HAProxy in TCP mode in front
// of the real binary serving TLS: clients connect to HAProxy from
// distinct loopback addresses, and derper sees those addresses, not
// HAProxy's, through send-proxy (v1) and send-proxy-v2.
func TestE2EProxyProtocolHAProxy(t *testing.T) {
	bin := haproxyPath(t)
	dir := t.TempDir()
	const host = "derp.example.test"
	_, pool := tlsFixture(t, dir, host)
	tcfg := &tls.Config{ServerName: host, RootCAs: pool}
	port := freePort(t, "tcp")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	d := startDerper(t, nil, "-a", addr, "-c", filepath.Join(t.TempDir(), "c.json"), "-stun=false",
		"-certmode", "manual", "-certdir", dir, "-hostname", host, "-http-port", "-1",
		"-proxy-protocol-from", "127.0.0.1")
	front1, front2 := startHAProxy(t, bin, addr)

	url := "https://" + host + "/derp"
	c1, err := proxyClient(t, url, tcfg, fromDialer("127.0.0.5", front1, nil))
	if err != nil {
		t.Fatalf("client through send-proxy: %v", err)
	}
	c2, err := proxyClient(t, url, tcfg, fromDialer("127.0.0.6", front2, nil))
	if err != nil {
		t.Fatalf("client through send-proxy-v2: %v", err)
	}
	sendAndReceive(t, c1, c2)
	sendAndReceive(t, c2, c1)

	base := "https://" + addr
	remotes := clientRemotes(t, base, tcfg)
	var saw5, saw6 bool
	for _, r := range remotes {
		saw5 = saw5 || strings.HasPrefix(r, "127.0.0.5:")
		saw6 = saw6 || strings.HasPrefix(r, "127.0.0.6:")
		if strings.HasPrefix(r, "127.0.0.1:") {
			t.Errorf("a client shows HAProxy's address %s", r)
		}
	}
	if !saw5 || !saw6 {
		t.Errorf("clients page remotes %v, want 127.0.0.5:* (v1) and 127.0.0.6:* (v2)", remotes)
	}
	m := proxyVarz(t, base, tcfg)
	if m["proxied_connections"] != 2 || m[`refused{reason="missing_header"}`] != 0 || m[`refused{reason="invalid_header"}`] != 0 {
		t.Errorf("proxy_protocol metrics: %v", m)
	}
	d.stop(t)
}

// TestHAProxySampleConfig checks that the haproxy.cfg shown in
// docs/operating.md is one HAProxy accepts.
func TestHAProxySampleConfig(t *testing.T) {
	doc, err := os.ReadFile("../../docs/operating.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), "A sample `haproxy.cfg`")
	if !ok {
		t.Fatal("docs/operating.md has no sample haproxy.cfg")
	}
	_, after, ok1 := strings.Cut(after, "\n```\n")
	sample, _, ok2 := strings.Cut(after, "\n```\n")
	if !ok1 || !ok2 || !strings.Contains(sample, "send-proxy") {
		t.Fatalf("cannot find the sample's code block:\n%.300s", after)
	}
	bin := haproxyPath(t)
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(sample+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", cfg).CombinedOutput(); err != nil {
		t.Errorf("haproxy -c rejects the sample: %v\n%s\n%s", err, out, sample)
	}
}
