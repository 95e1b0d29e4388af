package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/key"
)

// readLogUntil collects the daemon's log lines, from the first not yet
// read, until done says it has seen enough or 10 s pass.
func readLogUntil(t *testing.T, d *daemon, lines []string, done func([]string) bool) []string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for !done(lines) {
		select {
		case l := <-d.logs:
			lines = append(lines, l)
		case <-d.done:
			// Drain what the exited daemon left.
			for {
				select {
				case l := <-d.logs:
					lines = append(lines, l)
					continue
				default:
				}
				break
			}
			if !done(lines) {
				t.Fatalf("derper exited before the expected lines:\n%s", strings.Join(lines, "\n"))
			}
			return lines
		case <-timeout:
			t.Fatalf("expected lines not logged:\n%s", strings.Join(lines, "\n"))
		}
	}
	return lines
}

// indexOf returns the index of the first line containing s, or -1.
func indexOf(lines []string, s string) int {
	for i, l := range lines {
		if strings.Contains(l, s) {
			return i
		}
	}
	return -1
}

// inOrder reports whether every substring occurs in lines, in order.
func inOrder(t *testing.T, lines []string, subs ...string) {
	t.Helper()
	last := -1
	for _, s := range subs {
		i := indexOf(lines, s)
		if i < 0 {
			t.Errorf("no line contains %q:\n%s", s, strings.Join(lines, "\n"))
			return
		}
		if i < last {
			t.Errorf("%q logged before %q:\n%s", s, subs[max(0, indexOf(subs, s)-1)], strings.Join(lines, "\n"))
		}
		last = i
	}
}

// TestE2ELogsJSON runs two meshed derpers, one logging JSON at debug
// level: every line parses, startup stages come in order, connection
// lines carry the client's short key and address, and repeated refusals
// of one client are cut short and summed up.
func TestE2ELogsJSON(t *testing.T) {
	dir := t.TempDir()
	pemPath, pool := tlsFixture(t, dir, "127.0.0.1")
	psk := filepath.Join(t.TempDir(), "mesh.key")
	os.WriteFile(psk, []byte(strings.Repeat("5a", 32)+"\n"), 0o600)
	pa, pb, sport := freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "udp")
	meshWith := fmt.Sprintf("127.0.0.1:%d,127.0.0.1:%d", pa, pb)
	env := []string{"SSL_CERT_FILE=" + pemPath, "SSL_CERT_DIR=/nonexistent"}
	common := []string{"-c", filepath.Join(t.TempDir(), "c.json"), "-certmode", "manual", "-certdir", dir, "-hostname", "127.0.0.1",
		"-http-port", "-1", "-mesh-psk-file", psk, "-mesh-with", meshWith, "-disallow-app-names", "blocked"}
	a := startDerper(t, env, append([]string{"-a", fmt.Sprintf("127.0.0.1:%d", pa), "-stun-port", fmt.Sprint(sport), "-log-format", "json"}, common...)...)
	b := startDerper(t, env, append([]string{"-a", fmt.Sprintf("127.0.0.1:%d", pb), "-stun=false"}, common[2:]...)...)
	defer b.stop(t)

	// A client with a known key, and a refused one that retries.
	url := fmt.Sprintf("https://127.0.0.1:%d/derp", pa)
	k := key.NewNode()
	c, err := derphttp.NewClient(k, url, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.TLSConfig = &tls.Config{RootCAs: pool}
	if err := c.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	const refusals = 8
	for range refusals {
		bad, err := derphttp.NewClient(key.NewNode(), url, nil)
		if err != nil {
			t.Fatal(err)
		}
		bad.TLSConfig = &tls.Config{RootCAs: pool}
		bad.AppName = "blocked"
		bad.Connect(t.Context()) // refused after the handshake, or soon after
		bad.Close()
	}

	peerB := fmt.Sprintf("mesh peer %q connected", fmt.Sprintf("127.0.0.1:%d", pb))
	peerBJSON, _ := json.Marshal(peerB)
	lines := readLogUntil(t, a, nil, func(l []string) bool {
		return indexOf(l, strings.Trim(string(peerBJSON), `"`)) >= 0 && indexOf(l, "connected (mesh false") >= 0 && indexOf(l, "STUN server listening on") >= 0
	})
	a.stop(t) // the summary of suppressed lines comes at shutdown
	lines = readLogUntil(t, a, lines, func(l []string) bool { return indexOf(l, "similar lines") >= 0 })

	var msgs []string
	var sawKey, sawRefusal bool
	refused := 0
	for _, l := range lines {
		var r map[string]any
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Errorf("not JSON: %q", l)
			continue
		}
		msg, _ := r["msg"].(string)
		msgs = append(msgs, msg)
		if r["time"] == nil || r["level"] == nil {
			t.Errorf("record without time or level: %q", l)
		}
		if strings.Contains(msg, "connected (mesh false") && r["key"] == k.Public().ShortString() {
			sawKey = true
			if addr, _ := r["addr"].(string); !strings.HasPrefix(addr, "127.0.0.1:") {
				t.Errorf("connection record addr %q", r["addr"])
			}
		}
		if strings.Contains(msg, "rejected") && !strings.Contains(msg, "suppressed") {
			refused++
			if r["key"] == nil || r["addr"] == nil {
				t.Errorf("refusal record without key or addr: %q", l)
			}
			sawRefusal = true
		}
		if strings.HasPrefix(msg, "mesh(") && r["peer"] == nil {
			t.Errorf("mesh line without peer attribute: %q", l)
		}
		if strings.Contains(msg, "listening on") || strings.Contains(msg, "serving on") || strings.Contains(msg, "certificate loaded") {
			if r["stage"] == nil {
				t.Errorf("stage line without stage attribute: %q", l)
			}
		}
	}
	if !sawKey {
		t.Errorf("no connection record with key %s:\n%s", k.Public().ShortString(), strings.Join(lines, "\n"))
	}
	if !sawRefusal || refused > 5 {
		t.Errorf("%d refusal lines for %d refusals, want 1 to 5", refused, refusals)
	}
	if i := indexOf(msgs, fmt.Sprintf("derp: suppressed %d similar lines (rejected: disallowed app name", refusals-refused)); i < 0 {
		t.Errorf("no summary of %d suppressed lines:\n%s", refusals-refused, strings.Join(msgs, "\n"))
	}
	inOrder(t, msgs, "DERP mesh key configured", "derper: certificate loaded from", "derper: listening on 127.0.0.1", "derper: serving on", peerB)
}

// TestE2ELogsText checks the default format: the reference's
// "date time message" lines, stage lines in order, no JSON.
func TestE2ELogsText(t *testing.T) {
	port, sport := freePort(t, "tcp"), freePort(t, "udp")
	d := startDerper(t, nil, "-a", fmt.Sprintf("127.0.0.1:%d", port), "-c", filepath.Join(t.TempDir(), "c.json"), "-stun-port", fmt.Sprint(sport))
	lines := readLogUntil(t, d, nil, func(l []string) bool {
		return indexOf(l, "STUN server listening on") >= 0 && indexOf(l, "serving on") >= 0
	})
	d.stop(t)
	plain := regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \S`)
	for _, l := range lines {
		if !plain.MatchString(l) {
			t.Errorf("not a plain log line: %q", l)
		}
	}
	inOrder(t, lines, fmt.Sprintf("derper: listening on 127.0.0.1:%d (DERP and HTTP)", port), fmt.Sprintf("derper: serving on 127.0.0.1:%d", port))
	if i := indexOf(lines, fmt.Sprintf("STUN server listening on 127.0.0.1:%d", sport)); i < 0 {
		t.Errorf("no STUN line:\n%s", strings.Join(lines, "\n"))
	}
}
