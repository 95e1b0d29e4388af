package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/derpmap"
	"github.com/openderp/openderp/key"
)

// runDerperFails runs derper expecting a startup failure, and returns its
// combined output.
func runDerperFails(t *testing.T, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	args = append([]string{"-log-level=debug"}, args...)
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), runAsDerperEnv+"=1"), env...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Errorf("%v: exited 0\n%s", args, out)
	}
	for _, l := range findSecrets(string(out), daemonSecrets(env, args)) {
		t.Errorf("key material in derper's log: %s", l)
	}
	return string(out)
}

func TestE2EStartupErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.json")
	psk := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	base := []string{"-c", cfg, "-a", "127.0.0.1:0", "-stun=false"}
	tls443 := []string{"-c", cfg, "-a", "127.0.0.1:443", "-stun=false", "-certdir", dir}
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"bad home", nil, append(base, "-home", "ftp://x"), `unknown --home value "ftp://x"`},
		{"negative write timeout", nil, append(base, "-tcp-write-timeout=-1s"), "-tcp-write-timeout must not be negative"},
		{"long mesh key", nil, append(base, "-mesh-psk-file", psk("long", strings.Repeat("ab", 33))), "invalid mesh key: invalid mesh key: must be 64-digit hexadecimal number"},
		{"blank mesh key", nil, append(base, "-mesh-psk-file", psk("blank", "\n")), "must be 64-digit hexadecimal number"},
		{"zero mesh key", nil, append(base, "-mesh-psk-file", psk("zero", strings.Repeat("0", 64))), "all zeros"},
		{"bad dev mesh key", []string{"TAILSCALE_DERPER_MESH_KEY=xyz"}, append(base, "-dev"), "must be 64-digit hexadecimal number"},
		{"dev mesh-with without key", nil, append(base, "-dev", "-mesh-with", "a.example", "-mesh-psk-file", psk("ok", strings.Repeat("ab", 32))), "--mesh-with requires --mesh-psk-file"},
		{"mesh tuple", nil, append(base, "-mesh-with", "a/b/c"), `startMesh: too many components in host tuple "a/b/c"`},
		{"trusted cidrs", []string{"TS_DEBUG_TRUSTED_CIDRS=10.0.0.0/8,nonsense"}, base, `invalid CIDR in TS_DEBUG_TRUSTED_CIDRS: "nonsense"`},
		{"letsencrypt ip", nil, append(tls443, "-hostname", "127.0.0.1"), "derper: can not start cert provider: --hostname is an IP address"},
		{"gcp no eab", nil, append(tls443, "-certmode", "gcp", "-hostname", "derp.example"), "derper: can not start cert provider: --certmode=gcp requires --acme-eab-kid and --acme-eab-key flags"},
		{"gcp no email", nil, append(tls443, "-certmode", "gcp", "-hostname", "derp.example", "-acme-eab-kid", "k", "-acme-eab-key", "a2V5"), "--certmode=gcp requires --acme-email flag"},
		{"ip certs manual", nil, append(tls443, "-certmode", "manual", "-acme-ip-certs"), "--acme-ip-certs requires --certmode=letsencrypt"},
		{"manual files missing", nil, append(tls443, "-certmode", "manual", "-hostname", "derp.example"), "fix: manual mode reads " + filepath.Join(dir, "derp.example.crt")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if out := runDerperFails(t, tt.env, tt.args...); !strings.Contains(out, tt.want) {
				t.Errorf("output %q, want %q", out, tt.want)
			}
		})
	}
}

var pinLogLine = regexp.MustCompile(`Using self-signed certificate for IP address "127\.0\.0\.1"\. Configure it in DERPMap using: \(https://tailscale\.com/s/custom-derp\)`)
var pinNodeLine = regexp.MustCompile(`^  (\{"Name":"custom","RegionID":900,"HostName":"127\.0\.0\.1","CertName":"sha256-raw:[0-9a-f]{64}"\})$`)

// waitPin reads the daemon's log up to the pinned DERP node JSON.
func waitPin(t *testing.T, d *daemon, seen []string) *derpmap.Node {
	t.Helper()
	lines := append([]string(nil), seen...)
	timeout := time.After(10 * time.Second)
	for i := 0; ; i++ {
		for ; i < len(lines); i++ {
			if m := pinNodeLine.FindStringSubmatch(lines[i]); m != nil {
				if i == 0 || !pinLogLine.MatchString(lines[i-1]) {
					t.Fatalf("pin JSON without its announcement: %q", lines[max(0, i-1):i+1])
				}
				var n derpmap.Node
				if err := jsonUnmarshal(m[1], &n); err != nil {
					t.Fatal(err)
				}
				return &n
			}
		}
		select {
		case l := <-d.logs:
			lines = append(lines, l)
			i--
		case <-timeout:
			t.Fatalf("no pin logged:\n%s", strings.Join(lines, "\n"))
		}
	}
}

// TestE2EIPOnly runs derper with an IP host name and no certificate: it
// generates one, logs the pin, and clients that check the pin (and only
// the pin) relay through it; a wrong pin is refused. A restart keeps the
// certificate.
func TestE2EIPOnly(t *testing.T) {
	certDir := filepath.Join(t.TempDir(), "certs") // does not exist yet
	cfgPath := filepath.Join(t.TempDir(), "c.json")
	port := freePort(t, "tcp")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{"-a", addr, "-c", cfgPath, "-certmode", "manual", "-certdir", certDir, "-hostname", "127.0.0.1", "-http-port", "-1", "-stun=false"}
	d := startDerper(t, nil, args...)
	node := waitPin(t, d, nil)
	if _, err := os.Stat(filepath.Join(certDir, "127.0.0.1.crt")); err != nil {
		t.Fatal(err)
	}

	// A TLS handshake without SNI is accepted, and the chain is the
	// pinned certificate plus the meta certificate.
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	st := conn.ConnectionState()
	conn.Close()
	if st.ServerName != "" || len(st.PeerCertificates) != 2 || derpmap.CertPin(st.PeerCertificates[0].Raw) != node.CertName {
		t.Fatalf("SNI %q, %d certs", st.ServerName, len(st.PeerCertificates))
	}
	if err := derphttp.VerifyCertPin(st.PeerCertificates, node.CertName, ""); err != nil {
		t.Fatal(err)
	}

	regionClient := func(n derpmap.Node) *derphttp.Client {
		n.Name, n.RegionID, n.DERPPort = "1", 900, port
		region := &derpmap.Region{RegionID: 900, RegionCode: "custom", Nodes: []*derpmap.Node{&n}}
		c := derphttp.NewRegionClient(key.NewNode(), t.Logf, func() *derpmap.Region { return region })
		t.Cleanup(func() { c.Close() })
		return c
	}
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	a, b := regionClient(*node), regionClient(*node)
	if err := a.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	sendUntilReceived(t, ctx, a, b, "pinned")

	wrong := *node
	wrong.CertName = derpmap.CertPin([]byte("another certificate"))
	if err := regionClient(wrong).Connect(ctx); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("wrong pin: %v", err)
	}

	// CONNECT on the TLS listener is refused.
	tc, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(tc, "CONNECT login.example.com:443 HTTP/1.1\r\nHost: login.example.com:443\r\n\r\n")
	tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(tc), nil)
	tc.Close()
	if err != nil || res.StatusCode != 403 {
		t.Errorf("CONNECT: %v %v", res, err)
	} else if body := readAll(res); body != "this relay does not proxy CONNECT requests\n" {
		t.Errorf("CONNECT body %q", body)
	}
	d.stop(t)

	// The restarted daemon serves the same certificate.
	d2 := startDerper(t, nil, args...)
	if n2 := waitPin(t, d2, nil); n2.CertName != node.CertName {
		t.Errorf("pin changed across restart: %s, then %s", node.CertName, n2.CertName)
	}
	d2.stop(t)
}

// TestE2EHomeFlagAndNoContent checks -home on the real binary, and the
// cache headers of /generate_204.
func TestE2EHomeFlagAndNoContent(t *testing.T) {
	noRedirect := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tt := range []struct {
		home     string
		code     int
		location string
	}{
		{"blank", 200, ""},
		{"https://example.com/relay", 302, "https://example.com/relay"},
	} {
		port := freePort(t, "tcp")
		d := startDerper(t, nil, "-a", fmt.Sprintf("127.0.0.1:%d", port), "-c", filepath.Join(t.TempDir(), "c.json"), "-stun=false", "-home", tt.home)
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		resp, body := httpGet(t, noRedirect, base+"/any/path")
		if resp.StatusCode != tt.code || resp.Header.Get("Location") != tt.location || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("-home %s: %d %q", tt.home, resp.StatusCode, resp.Header.Get("Location"))
		}
		if tt.home == "blank" && body != "" {
			t.Errorf("-home blank: body %q", body)
		}
		resp, _ = httpGet(t, noRedirect, base+"/generate_204?t=1700000000", "X-Tailscale-Challenge", "ts_2001:db8::1")
		if resp.StatusCode != 204 || resp.Header.Get("X-Tailscale-Response") != "response ts_2001:db8::1" ||
			resp.Header.Get("Cache-Control") != "no-cache, no-store, must-revalidate, no-transform, max-age=0" {
			t.Errorf("generate_204: %d %v", resp.StatusCode, resp.Header)
		}
		d.stop(t)
	}
}

// TestE2ESIGHUP: without -rate-config, SIGHUP keeps its default action and
// ends the process, as in every derper release.
func TestE2ESIGHUP(t *testing.T) {
	needDefaultSIGHUP(t)
	port := freePort(t, "tcp")
	d := startDerper(t, nil, "-a", fmt.Sprintf("127.0.0.1:%d", port), "-c", filepath.Join(t.TempDir(), "c.json"), "-stun=false")
	d.cmd.Process.Signal(syscall.SIGHUP)
	select {
	case <-d.done:
		ws, ok := d.cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGHUP {
			t.Errorf("exit: %v", d.waitErr)
		}
	case <-time.After(10 * time.Second):
		t.Error("derper ignored SIGHUP")
	}
}

// TestE2ETLSActiveGauge checks that a DERP connection stays in
// derper_tls_active_version until it closes, and leaves it afterwards.
func TestE2ETLSActiveGauge(t *testing.T) {
	dir := t.TempDir()
	_, pool := tlsFixture(t, dir, "127.0.0.1")
	port := freePort(t, "tcp")
	d := startDerper(t, nil, "-a", fmt.Sprintf("127.0.0.1:%d", port), "-c", filepath.Join(t.TempDir(), "c.json"),
		"-certmode", "manual", "-certdir", dir, "-hostname", "127.0.0.1", "-http-port", "-1", "-stun=false")
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	gauge := func() string {
		_, varz := httpGet(t, hc, base+"/debug/varz")
		m := regexp.MustCompile(`(?m)^derper_tls_active_version\{version="1\.3"\} (\d+)$`).FindStringSubmatch(varz)
		if m == nil {
			return ""
		}
		return m[1]
	}
	// The varz request itself is active while it is served.
	if g := gauge(); g != "1" {
		t.Fatalf("idle gauge %q", g)
	}
	c, err := derphttp.NewClient(key.NewNode(), base+"/derp", t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	c.TLSConfig = &tls.Config{RootCAs: pool}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Recv(); err != nil { // ServerInfo: the server has the connection
		t.Fatal(err)
	}
	if g := gauge(); g != "2" {
		t.Errorf("gauge with a DERP connection: %q, want 2", g)
	}
	c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for gauge() != "1" {
		if time.Now().After(deadline) {
			t.Fatalf("gauge stayed at %q after the DERP connection closed", gauge())
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.stop(t)
}

// TestE2EMeshDialHost meshes two derpers with host/dialhost entries: the
// TLS name is the first part, the TCP connection goes to the second.
func TestE2EMeshDialHost(t *testing.T) {
	dir := t.TempDir()
	pemPath, pool := tlsFixture(t, dir, "127.0.0.1")
	psk := filepath.Join(t.TempDir(), "mesh.key")
	os.WriteFile(psk, []byte(strings.Repeat("AB", 32)+"\n"), 0o600)
	pa, pb := freePort(t, "tcp"), freePort(t, "tcp")
	meshWith := fmt.Sprintf("127.0.0.1:%d/localhost,127.0.0.1:%d/localhost", pa, pb)
	env := []string{"SSL_CERT_FILE=" + pemPath, "SSL_CERT_DIR=/nonexistent"}
	start := func(port int) *daemon {
		return startDerper(t, env, "-a", fmt.Sprintf("127.0.0.1:%d", port), "-c", filepath.Join(t.TempDir(), "c.json"),
			"-certmode", "manual", "-certdir", dir, "-hostname", "127.0.0.1", "-http-port", "-1", "-stun=false",
			"-mesh-psk-file", psk, "-mesh-with", meshWith)
	}
	a, b := start(pa), start(pb)
	relay(t, fmt.Sprintf("https://127.0.0.1:%d/derp", pa), fmt.Sprintf("https://127.0.0.1:%d/derp", pb), &tls.Config{RootCAs: pool}, "")
	logs := a.drain()
	for _, want := range []string{"Got mesh key from static file", "DERP mesh key configured",
		fmt.Sprintf(`mesh("127.0.0.1:%d"): will dial "localhost" for "127.0.0.1:%d"`, pb, pb),
		fmt.Sprintf(`mesh("127.0.0.1:%d"): dialing "localhost:%d" instead of "127.0.0.1:%d"`, pb, pb, pb)} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	a.stop(t)
	b.stop(t)
}

// TestE2EDevMeshKey: in -dev mode the mesh key comes from the environment.
func TestE2EDevMeshKey(t *testing.T) {
	port := freePort(t, "tcp")
	d := startDerper(t, []string{"TAILSCALE_DERPER_MESH_KEY=" + strings.Repeat("cd", 32)}, "-dev", "-a", fmt.Sprintf("127.0.0.1:%d", port), "-stun=false")
	logs := d.drain()
	if !strings.Contains(logs, "Set mesh key from TAILSCALE_DERPER_MESH_KEY") || !strings.Contains(logs, "DERP mesh key configured") {
		t.Errorf("logs:\n%s", logs)
	}
	_, body := httpGet(t, &http.Client{Timeout: 10 * time.Second}, fmt.Sprintf("http://127.0.0.1:%d/debug/", port))
	if !strings.Contains(body, "Mesh key") || !strings.Contains(body, "true") {
		t.Errorf("debug index does not show the mesh key")
	}
	d.stop(t)
}

func readAll(res *http.Response) string {
	defer res.Body.Close()
	var b strings.Builder
	buf := make([]byte, 512)
	for range 100 {
		n, err := res.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
