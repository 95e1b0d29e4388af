package check

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMetricsExported starts derper (HTTPS with a manual certificate, on
// loopback) and a derpprobe watching it, and checks that every metric the
// alert rules and the Grafana dashboard query is one that the process of
// the queried job really exports on /debug/varz.
func TestMetricsExported(t *testing.T) {
	bin := binaries(t)
	dir := t.TempDir()
	certPEM := writeCert(t, dir, "localhost")
	port, port80, stunPort, probePort, metricsPort := freePort(t), freePort(t), freePort(t), freePort(t), freePort(t)
	env := append(os.Environ(), "SSL_CERT_FILE="+certPEM, "HOME="+dir)

	startProc(t, env, filepath.Join(bin, "derper"), "-c", filepath.Join(dir, "derper.key"),
		"-certmode", "manual", "-certdir", dir, "-hostname", "localhost",
		"-a", fmt.Sprintf("127.0.0.1:%d", port), "-http-port", strconv.Itoa(port80), "-stun-port", strconv.Itoa(stunPort),
		"-metrics-addr", fmt.Sprintf("127.0.0.1:%d", metricsPort))

	pool := x509.NewCertPool()
	b, _ := os.ReadFile(certPEM)
	pool.AppendCertsFromPEM(b)
	tr := &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: "localhost"},
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	derperVarz := fmt.Sprintf("https://127.0.0.1:%d/debug/varz", port)
	waitFor(t, hc, derperVarz, "derp_accepts")

	mapPath := filepath.Join(dir, "derpmap.json")
	os.WriteFile(mapPath, []byte(fmt.Sprintf(`{"Regions":{"900":{"RegionID":900,"RegionCode":"t","Nodes":[
		{"Name":"900a","RegionID":900,"HostName":"localhost","IPv4":"127.0.0.1","IPv6":"none","DERPPort":%d,"STUNPort":%d}]}}}`, port, stunPort)), 0o644)
	startProc(t, env, filepath.Join(bin, "derpprobe"), "-derp-map", "file://"+mapPath,
		"-listen", fmt.Sprintf("127.0.0.1:%d", probePort), "-spread=false")
	probeVarz := fmt.Sprintf("http://127.0.0.1:%d/debug/varz", probePort)
	// The leaf expiry appears after the first TLS probe, the mesh result
	// after the slowest probe's first run.
	waitFor(t, hc, probeVarz, "derpprobe_tls_leaf_expiry_seconds")
	waitFor(t, hc, probeVarz, `derpprobe_result{class="derp_mesh"`)

	exported := map[string]map[string]bool{
		"derper":    metricNames(t, hc, derperVarz),
		"derpprobe": metricNames(t, hc, probeVarz),
	}
	synthetic := map[string]bool{"up": true} // added by Prometheus itself
	sels := append(alertSelectors(t), dashboardSelectors(t)...)
	if len(sels) == 0 {
		t.Fatal("no metrics found in the rules and the dashboard")
	}
	for _, s := range sels {
		switch {
		case synthetic[s.name]:
		case s.job != "":
			if exported[s.job] == nil {
				t.Errorf("%s: job %q is neither derper nor derpprobe", s.where, s.job)
			} else if !exported[s.job][s.name] {
				t.Errorf("%s: %s does not export %s", s.where, s.job, s.name)
			}
		case !exported["derper"][s.name] && !exported["derpprobe"][s.name]:
			t.Errorf("%s: neither derper nor derpprobe exports %s", s.where, s.name)
		}
	}
	t.Logf("%d metric uses checked against %d derper and %d derpprobe names", len(sels), len(exported["derper"]), len(exported["derpprobe"]))

	// The Kubernetes probes GET /healthz on the -metrics-addr listener,
	// which also serves /metrics under the same names as /debug/varz.
	t.Run("healthz", func(t *testing.T) {
		if body := get(t, hc, fmt.Sprintf("http://127.0.0.1:%d/healthz", metricsPort)); strings.TrimSpace(body) != "ok" {
			t.Errorf("/healthz = %q; want ok", body)
		}
		metrics := metricNames(t, hc, fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
		for name := range exported["derper"] {
			if strings.HasPrefix(name, "derp_") && !metrics[name] {
				t.Errorf("/metrics lacks %s, which /debug/varz has", name)
			}
		}
	})
}

// metricNames fetches a Prometheus text exposition and returns its metric
// names; a histogram's or summary's series also count under its base name.
func metricNames(t *testing.T, hc *http.Client, url string) map[string]bool {
	t.Helper()
	body := get(t, hc, url)
	names := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name := line[:strings.IndexAny(line+" ", "{ ")]
		names[name] = true
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suf); ok {
				names[base] = true
			}
		}
	}
	return names
}

func get(t *testing.T, hc *http.Client, url string) string {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return string(b)
}

// waitFor polls url until its body contains want, for up to a minute.
func waitFor(t *testing.T, hc *http.Client, url, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		if resp, err := hc.Get(url); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), want) {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never showed %q (last: %s)", url, want, last)
		case <-tick.C:
		}
	}
}

// startProc runs a binary until the test ends, then stops it with SIGTERM
// and shows its output if the test failed.
func startProc(t *testing.T, env []string, name string, args ...string) {
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), filepath.Base(name)+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("%s output:\n%s", filepath.Base(name), b)
		}
		logf.Close()
	})
}

// writeCert writes a self-signed certificate for host as derper's manual
// mode expects (<dir>/<host>.crt and .key) and returns the .crt path.
func writeCert(t *testing.T, dir, host string) string {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: host},
		DNSNames:              []string{host},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	crt := filepath.Join(dir, host+".crt")
	os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, host+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return crt
}

// freePort returns a loopback port free for TCP and UDP a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		ln.Close()
		if err == nil {
			pc.Close()
			return p
		}
	}
	t.Fatal("no port free for both TCP and UDP")
	return 0
}
