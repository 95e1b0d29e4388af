package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/internal/certs"
	"github.com/openderp/openderp/key"
	"github.com/openderp/openderp/stun"
)

// The test binary doubles as derper: with this variable set, TestMain
// runs main instead of the tests, so end-to-end tests exercise the real
// flag parsing, signals and exit status.
const runAsDerperEnv = "OPENDERP_TEST_RUN_AS_DERPER"

func TestMain(m *testing.M) {
	if os.Getenv(runAsDerperEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// daemon is a derper process started by a test.
type daemon struct {
	cmd     *exec.Cmd
	logs    chan string   // every stderr line
	done    chan struct{} // closed when the process has been waited for
	waitErr error         // Wait's result; read after done is closed
	leaks   []string      // secrets found in the log; read after done is closed
}

// needDefaultSIGHUP skips a test that checks SIGHUP's default action when
// this process was started with SIGHUP ignored (under nohup, say): the
// derper it starts inherits the ignored disposition, and nothing in Go can
// restore the default for it.
func needDefaultSIGHUP(t *testing.T) {
	t.Helper()
	if signal.Ignored(syscall.SIGHUP) {
		t.Skip("SIGHUP is ignored in this process (nohup?); derper would inherit that")
	}
}

// startDerper runs derper with args and waits until it logs that it is
// serving. Every daemon logs at debug level unless args choose a level,
// and its whole log is searched for the key material it was given or
// created (see e2e_logaudit_test.go).
func startDerper(t *testing.T, env []string, args ...string) *daemon {
	t.Helper()
	args = append([]string{"-log-level=debug"}, args...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), runAsDerperEnv+"=1"), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, logs: make(chan string, 1000), done: make(chan struct{})}
	serving := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		seen := false
		var all logCapture
		for sc.Scan() {
			line := sc.Text()
			all.add(line)
			select {
			case d.logs <- line:
			default:
			}
			if !seen && strings.Contains(line, "derper: serving on") {
				seen = true
				close(serving)
			}
		}
		d.waitErr = cmd.Wait()
		d.leaks = findSecrets(all.String(), daemonSecrets(env, args))
		close(d.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-d.done:
			for _, l := range d.leaks {
				t.Errorf("key material in derper's log: %s", l)
			}
		case <-time.After(10 * time.Second):
		}
	})
	select {
	case <-serving:
	case <-d.done:
		t.Fatalf("derper exited: %v\n%s", d.waitErr, d.drain())
	case <-time.After(15 * time.Second):
		t.Fatalf("derper did not start\n%s", d.drain())
	}
	return d
}

func (d *daemon) drain() string {
	var b strings.Builder
	for {
		select {
		case l := <-d.logs:
			b.WriteString(l + "\n")
		default:
			return b.String()
		}
	}
}

// stop sends SIGTERM and requires a prompt exit with status 0.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		if d.waitErr != nil {
			t.Errorf("derper exit: %v\n%s", d.waitErr, d.drain())
		}
	case <-time.After(10 * time.Second):
		t.Errorf("derper did not exit on SIGTERM")
	}
}

func httpGet(t *testing.T, c *http.Client, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// relay connects two clients to the given URLs and checks that a packet
// from the second reaches the first, retrying while a mesh settles.
func relay(t *testing.T, url1, url2 string, tcfg *tls.Config, dialTo string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	k1, k2 := key.NewNode(), key.NewNode()
	c1, err := derphttp.NewClient(k1, url1, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	c2, err := derphttp.NewClient(k2, url2, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c1.TLSConfig, c2.TLSConfig = tcfg, tcfg
	if dialTo != "" {
		// The URLs name a host without DNS; dial loopback instead.
		var d net.Dialer
		dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, dialTo)
		}
		c1.SetURLDialer(dial)
		c2.SetURLDialer(dial)
	}
	if err := c1.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c2.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	sendUntilReceived(t, ctx, c1, c2, "hello")
}

// sendUntilReceived sends msg from tx to rx every 100 ms until rx has it,
// and fails the test if ctx ends first. Connect returns once a client has
// sent its key, maybe before the server has registered it, and a packet
// for a client not registered yet is dropped, as are some while a mesh
// settles. Copies still on their way are left for later reads, which skip
// what they do not look for.
func sendUntilReceived(t *testing.T, ctx context.Context, rx, tx *derphttp.Client, msg string) {
	t.Helper()
	got := make(chan error, 1)
	go func() { // ends at the packet, or when rx is closed
		for {
			m, err := rx.Recv()
			if err != nil {
				got <- err
				return
			}
			if p, ok := m.(derp.ReceivedPacket); ok && p.Source == tx.SelfPublicKey() && string(p.Data) == msg {
				got <- nil
				return
			}
		}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := tx.Send(rx.SelfPublicKey(), []byte(msg)); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-got:
			if err != nil {
				t.Fatalf("receiving %q: %v", msg, err)
			}
			return
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("%q not relayed: %v", msg, ctx.Err())
		}
	}
}

func TestE2EPlainHTTP(t *testing.T) {
	port, stunPort := freePort(t, "tcp"), freePort(t, "udp")
	cfgPath := filepath.Join(t.TempDir(), "derper.json")
	d := startDerper(t, nil,
		"-a", fmt.Sprintf("127.0.0.1:%d", port), "-c", cfgPath,
		"-stun-port", fmt.Sprint(stunPort),
		// IP literals resolve without DNS.
		"-bootstrap-dns-names", "127.0.0.1,::1")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	c := &http.Client{Timeout: 10 * time.Second}

	if b, err := os.ReadFile(cfgPath); err != nil || !strings.Contains(string(b), "privkey:") {
		t.Errorf("config: %v %q", err, b)
	}
	resp, body := httpGet(t, c, base+"/some/unknown/path")
	if resp.StatusCode != 200 || !strings.Contains(body, "<h1>DERP</h1>") || !strings.Contains(body, "/debug/") {
		t.Errorf("home: %d %q", resp.StatusCode, body)
	}
	if resp, _ := httpGet(t, c, base+"/derp/probe"); resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("probe: %d", resp.StatusCode)
	}
	resp, _ = httpGet(t, c, base+"/generate_204", "X-Tailscale-Challenge", "abc-1.2_3")
	if resp.StatusCode != 204 || resp.Header.Get("X-Tailscale-Response") != "response abc-1.2_3" {
		t.Errorf("generate_204: %d %q", resp.StatusCode, resp.Header.Get("X-Tailscale-Response"))
	}
	if resp, body := httpGet(t, c, base+"/robots.txt"); body != "User-agent: *\nDisallow: /\n" || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("robots: %q", body)
	}

	// Bootstrap DNS: the first refresh runs in the background.
	var m map[string][]string
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, body := httpGet(t, c, base+"/bootstrap-dns")
		if !resp.Close || resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("bootstrap-dns headers: %v", resp.Header)
		}
		if body != "" {
			if err := json.Unmarshal([]byte(body), &m); err != nil {
				t.Fatalf("bootstrap-dns: %v %q", err, body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("bootstrap-dns never filled")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(m["127.0.0.1"]) != 1 || m["::1"][0] != "::1" {
		t.Errorf("bootstrap-dns: %v", m)
	}

	// Debug pages from loopback.
	if resp, body := httpGet(t, c, base+"/debug/"); resp.StatusCode != 200 || !strings.Contains(body, "derper debug") || !strings.Contains(body, "/debug/traffic") {
		t.Errorf("debug index: %d", resp.StatusCode)
	}
	if resp, body := httpGet(t, c, base+"/debug/check"); resp.StatusCode != 200 || body != "consistency check passed\n" {
		t.Errorf("check: %d %q", resp.StatusCode, body)
	}
	if resp, _ := httpGet(t, c, base+"/debug/", "X-Forwarded-For", "203.0.113.1"); resp.StatusCode != 403 {
		t.Errorf("debug behind proxy: %d", resp.StatusCode)
	}

	// STUN.
	uc, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", stunPort))
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	tx := stun.NewTxID()
	uc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := uc.Write(stun.Request(tx)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, err := uc.Read(buf)
	if err != nil {
		t.Fatalf("STUN: %v", err)
	}
	rtx, addr, err := stun.ParseResponse(buf[:n])
	if err != nil || rtx != tx || addr.Port() != uint16(uc.LocalAddr().(*net.UDPAddr).Port) {
		t.Errorf("STUN response: %v %v %v", rtx, addr, err)
	}

	relay(t, base+"/derp", base+"/derp", nil, "")

	_, varz := httpGet(t, c, base+"/debug/varz")
	for _, want := range []string{"go_goroutines ", "# TYPE derp_accepts counter\n", "derp_packets_received_kind{kind=\"other\"} 1\n",
		"# TYPE bootstrap_dns_requests counter\n", "stun_requests{disposition=\"success\"} 1\n", "version{version=", "# TYPE uptime_sec counter\n"} {
		if !strings.Contains(varz, want) {
			t.Errorf("varz lacks %q", want)
		}
	}
	d.stop(t)
}

func TestE2EDisabledAndDev(t *testing.T) {
	port := freePort(t, "tcp")
	d := startDerper(t, nil, "-a", fmt.Sprintf("127.0.0.1:%d", port), "-c", filepath.Join(t.TempDir(), "c.json"), "-derp=false", "-stun=false")
	c := &http.Client{Timeout: 10 * time.Second}
	resp, body := httpGet(t, c, fmt.Sprintf("http://127.0.0.1:%d/derp", port))
	if resp.StatusCode != 404 || body != "no DERP relay here: this server runs with -derp=false\n" {
		t.Errorf("/derp: %d %q", resp.StatusCode, body)
	}
	d.stop(t)
}

func TestE2EConfigErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"PrivateKey": ""}`), 0o600)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-c", bad, "-a", "127.0.0.1:0", "-stun=false"}, "derper: config:"},
		{[]string{"-a", "nonsense", "-stun=false"}, "invalid server address"},
		{[]string{"-c", filepath.Join(t.TempDir(), "c.json"), "-a", "127.0.0.1:0", "-stun=false", "-mesh-with", "x"}, "--mesh-with requires --mesh-psk-file"},
		{[]string{"-c", filepath.Join(t.TempDir(), "c.json"), "-a", "127.0.0.1:0", "-stun=false", "-certmode", "bogus", "-a", "127.0.0.1:https"}, `unsupport cert mode: "bogus"`},
	}
	for _, tt := range tests {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		cmd := exec.CommandContext(ctx, os.Args[0], tt.args...)
		cmd.Env = append(os.Environ(), runAsDerperEnv+"=1")
		out, err := cmd.CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), tt.want) {
			t.Errorf("%v: err %v, output %q, want %q", tt.args, err, out, tt.want)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-version")
	cmd.Env = append(os.Environ(), runAsDerperEnv+"=1")
	if out, err := cmd.Output(); err != nil || strings.TrimSpace(string(out)) != derp.Version {
		t.Errorf("-version: %v %q", err, out)
	}
}

// tlsFixture writes a self-signed certificate for 127.0.0.1 into dir as
// manual-mode files, and returns a PEM file of it and a pool trusting it.
func tlsFixture(t *testing.T, dir, hostname string) (pemPath string, pool *x509.CertPool) {
	t.Helper()
	der := writeTestCert(t, dir, hostname)
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(c)
	crt, _ := certs.ManualFiles(dir, hostname)
	return crt, pool
}

func TestE2EManualTLS(t *testing.T) {
	dir := t.TempDir()
	_, pool := tlsFixture(t, dir, "derp.example.test")
	port, p80 := freePort(t, "tcp"), freePort(t, "tcp")
	d := startDerper(t, nil, "-a", fmt.Sprintf("127.0.0.1:%d", port), "-c", filepath.Join(t.TempDir(), "c.json"),
		"-certmode", "manual", "-certdir", dir, "-hostname", "derp.example.test", "-http-port", fmt.Sprint(p80), "-stun=false")

	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{ServerName: "derp.example.test", RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	st := conn.ConnectionState()
	conn.Close()
	if n := len(st.PeerCertificates); n != 2 || !strings.HasPrefix(st.PeerCertificates[1].Subject.CommonName, derp.MetaCertCommonNamePrefix) {
		t.Errorf("chain: %d certs", n)
	}
	if st.NegotiatedProtocol != "" && st.NegotiatedProtocol != "http/1.1" {
		t.Errorf("ALPN %q", st.NegotiatedProtocol)
	}
	if _, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{ServerName: "other.example", InsecureSkipVerify: true}); err == nil {
		t.Error("wrong SNI accepted")
	}

	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{ServerName: "derp.example.test", RootCAs: pool}}}
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	if resp, _ := httpGet(t, hc, base+"/"); resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Errorf("home over TLS: %d", resp.StatusCode)
	}
	_, varz := httpGet(t, hc, base+"/debug/varz")
	for _, want := range []string{"derper_tls_request_version{version=\"1.3\"}", "# TYPE derper_tls_active_version gauge\n", "# TYPE tls_listener_accepted_connections counter\n"} {
		if !strings.Contains(varz, want) {
			t.Errorf("varz lacks %q", want)
		}
	}

	// Port 80: captive portal served, the rest redirected.
	noRedirect := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	p80base := fmt.Sprintf("http://127.0.0.1:%d", p80)
	if resp, _ := httpGet(t, noRedirect, p80base+"/generate_204"); resp.StatusCode != 204 {
		t.Errorf("port 80 generate_204: %d", resp.StatusCode)
	}
	if resp, _ := httpGet(t, noRedirect, p80base+"/derp?x=1"); resp.StatusCode != 302 || resp.Header.Get("Location") != fmt.Sprintf("https://127.0.0.1:%d/derp?x=1", p80) {
		t.Errorf("port 80 redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	url := fmt.Sprintf("https://derp.example.test:%d/derp", port)
	relay(t, url, url, &tls.Config{RootCAs: pool}, fmt.Sprintf("127.0.0.1:%d", port))
	d.stop(t)
}

// TestE2EMesh runs two meshed derpers and relays a packet from a client of
// one to a client of the other.
func TestE2EMesh(t *testing.T) {
	dir := t.TempDir()
	pemPath, pool := tlsFixture(t, dir, "127.0.0.1")
	psk := filepath.Join(t.TempDir(), "mesh.key")
	os.WriteFile(psk, []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	pa, pb := freePort(t, "tcp"), freePort(t, "tcp")
	meshWith := fmt.Sprintf("127.0.0.1:%d,127.0.0.1:%d", pa, pb)
	// The daemons trust the test certificate as their system roots.
	env := []string{"SSL_CERT_FILE=" + pemPath, "SSL_CERT_DIR=/nonexistent"}
	start := func(port int) *daemon {
		return startDerper(t, env, "-a", fmt.Sprintf("127.0.0.1:%d", port), "-c", filepath.Join(t.TempDir(), "c.json"),
			"-certmode", "manual", "-certdir", dir, "-hostname", "127.0.0.1", "-http-port", "-1", "-stun=false",
			"-mesh-psk-file", psk, "-mesh-with", meshWith)
	}
	a, b := start(pa), start(pb)
	relay(t, fmt.Sprintf("https://127.0.0.1:%d/derp", pa), fmt.Sprintf("https://127.0.0.1:%d/derp", pb), &tls.Config{RootCAs: pool}, "")
	a.stop(t)
	b.stop(t)
}

// TestE2EDevOnLoopback runs derper as "make run" does, in dev mode with an
// explicit loopback address, and relays a packet through it.
func TestE2EDevOnLoopback(t *testing.T) {
	port, stunPort := freePort(t, "tcp"), freePort(t, "udp")
	d := startDerper(t, nil, "-dev", "-a", fmt.Sprintf("127.0.0.1:%d", port), "-stun-port", fmt.Sprint(stunPort))
	url := fmt.Sprintf("http://127.0.0.1:%d/derp", port)
	relay(t, url, url, nil, "")
	d.stop(t)
}
