package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/key"
)

// TestE2EGracefulShutdown runs the real binary with -shutdown-grace and
// sends it SIGTERM: clients get the Restarting frame, /healthz turns 503,
// the listener closes, a packet sent during the grace period is relayed
// and the process exits 0 once the period is over.
func TestE2EGracefulShutdown(t *testing.T) {
	const grace = 2 * time.Second
	port, mport, sport := freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "udp")
	d := startDerper(t, nil, "-a", fmt.Sprintf("127.0.0.1:%d", port), "-c", filepath.Join(t.TempDir(), "c.json"),
		"-stun-port", fmt.Sprint(sport), "-metrics-addr", fmt.Sprintf("127.0.0.1:%d", mport),
		"-shutdown-grace", grace.String())
	url := fmt.Sprintf("http://127.0.0.1:%d/derp", port)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	// Each client's messages arrive on a channel until its connection ends.
	type client struct {
		c    *derphttp.Client
		msgs chan derp.ReceivedMessage
	}
	var cs [2]client
	for i := range cs {
		c, err := derphttp.NewClient(key.NewNode(), url, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.UseWebSocket = i == 1 // both transports survive into the grace period
		if err := c.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		cs[i] = client{c, make(chan derp.ReceivedMessage, 100)}
		go func() {
			defer close(cs[i].msgs)
			for {
				m, err := c.Recv()
				if err != nil {
					return
				}
				if p, ok := m.(derp.ReceivedPacket); ok {
					p.Data = append([]byte(nil), p.Data...)
					m = p
				}
				cs[i].msgs <- m
			}
		}()
	}
	// next returns the next message of type T from ch, skipping others.
	next := func(what string, ch chan derp.ReceivedMessage, want func(derp.ReceivedMessage) bool) derp.ReceivedMessage {
		t.Helper()
		for {
			select {
			case m, ok := <-ch:
				if !ok {
					t.Fatalf("connection ended before %s", what)
				}
				if want(m) {
					return m
				}
			case <-ctx.Done():
				t.Fatalf("no %s", what)
			}
		}
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	healthz := fmt.Sprintf("http://127.0.0.1:%d/healthz", mport)
	if resp, _ := httpGet(t, hc, healthz); resp.StatusCode != 200 {
		t.Fatalf("/healthz before the signal: %d", resp.StatusCode)
	}

	start := time.Now()
	d.cmd.Process.Signal(syscall.SIGTERM)
	wantMsg := derp.ServerRestartingMessage{ReconnectIn: grace, TryFor: restartTryFor}
	for i := range cs {
		m := next("Restarting frame", cs[i].msgs, func(m derp.ReceivedMessage) bool {
			_, ok := m.(derp.ServerRestartingMessage)
			return ok
		})
		if m != wantMsg {
			t.Errorf("client %d: %+v, want %+v", i, m, wantMsg)
		}
	}
	if resp, body := httpGet(t, hc, healthz); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/healthz during the grace period: %d %q, want 503", resp.StatusCode, body)
	}
	if nc, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
		nc.Close()
		t.Error("main listener still accepts during the grace period")
	}
	if err := cs[1].c.Send(cs[0].c.SelfPublicKey(), []byte("in grace")); err != nil {
		t.Fatal(err)
	}
	p := next("packet sent during grace", cs[0].msgs, func(m derp.ReceivedMessage) bool {
		_, ok := m.(derp.ReceivedPacket)
		return ok
	}).(derp.ReceivedPacket)
	if string(p.Data) != "in grace" || p.Source != cs[1].c.SelfPublicKey() {
		t.Errorf("got %q from %v", p.Data, p.Source.ShortString())
	}

	select {
	case <-d.done:
	case <-ctx.Done():
		t.Fatal("derper did not exit after the grace period")
	}
	if d.waitErr != nil {
		t.Fatalf("derper exit: %v\n%s", d.waitErr, d.drain())
	}
	if el := time.Since(start); el < grace {
		t.Errorf("derper exited after %v, before the %v grace period", el, grace)
	}
	for i := range cs {
		for range cs[i].msgs { // ends when the connection does
		}
	}
}

// TestE2EGracefulMeshRestart restarts one of two meshed derpers with
// -shutdown-grace: the other one's mesh client hears the Restarting frame,
// waits as advised, and follows the restarted node's clients again.
func TestE2EGracefulMeshRestart(t *testing.T) {
	dir := t.TempDir()
	pemPath, pool := tlsFixture(t, dir, "127.0.0.1")
	psk := filepath.Join(t.TempDir(), "mesh.key")
	os.WriteFile(psk, []byte(strings.Repeat("cd", 32)+"\n"), 0o600)
	pa, pb := freePort(t, "tcp"), freePort(t, "tcp")
	meshWith := fmt.Sprintf("127.0.0.1:%d,127.0.0.1:%d", pa, pb)
	env := []string{"SSL_CERT_FILE=" + pemPath, "SSL_CERT_DIR=/nonexistent"}
	cfgA := filepath.Join(t.TempDir(), "a.json")
	start := func(port int, cfg string) *daemon {
		return startDerper(t, env, "-a", fmt.Sprintf("127.0.0.1:%d", port), "-c", cfg,
			"-certmode", "manual", "-certdir", dir, "-hostname", "127.0.0.1", "-http-port", "-1", "-stun=false",
			"-mesh-psk-file", psk, "-mesh-with", meshWith, "-shutdown-grace", "1s")
	}
	urlA, urlB := fmt.Sprintf("https://127.0.0.1:%d/derp", pa), fmt.Sprintf("https://127.0.0.1:%d/derp", pb)
	tcfg := &tls.Config{RootCAs: pool}
	a, b := start(pa, cfgA), start(pb, filepath.Join(t.TempDir(), "b.json"))
	relay(t, urlA, urlB, tcfg, "")

	a.cmd.Process.Signal(syscall.SIGTERM)
	b.waitLog(t, fmt.Sprintf("https://127.0.0.1:%d/derp is restarting; reconnecting in", pa))
	select {
	case <-a.done:
		if a.waitErr != nil {
			t.Fatalf("derper exit: %v", a.waitErr)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("derper did not exit after the grace period")
	}

	a2 := start(pa, cfgA)
	// A client of b reaches a client of the restarted node only once b's
	// mesh client follows that node again.
	relay(t, urlA, urlB, tcfg, "")
	a2.stop(t)
	b.stop(t)
}

// TestE2EGracefulSecondSignal: a second SIGTERM ends a long grace period
// at once, still with exit status 0.
func TestE2EGracefulSecondSignal(t *testing.T) {
	port := freePort(t, "tcp")
	d := startDerper(t, nil, "-a", fmt.Sprintf("127.0.0.1:%d", port), "-c", filepath.Join(t.TempDir(), "c.json"),
		"-stun=false", "-shutdown-grace", "10m")
	c, err := derphttp.NewClient(key.NewNode(), fmt.Sprintf("http://127.0.0.1:%d/derp", port), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.waitLog(t, "derper: shutting down")
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		if d.waitErr != nil {
			t.Fatalf("derper exit: %v", d.waitErr)
		}
	case <-ctx.Done():
		t.Fatal("derper did not exit on the second signal")
	}
}
