package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"html"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openderp/openderp/derpmap"
	"github.com/openderp/openderp/prober"
	"github.com/openderp/openderp/prober/probertest"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args []string
		want config
	}{
		{nil, config{
			derpMap: "https://login.tailscale.com/derpmap/default", listen: ":8030", spread: true,
			interval: 15 * time.Second, meshInterval: 15 * time.Second, stunInterval: 15 * time.Second,
			tlsInterval: 15 * time.Second, bwSize: 1_000_000,
			qdTimeout: 5 * time.Second, secretsPath: "prod/derp", secretsCache: defaultSecretsCacheDir(),
		}},
		{[]string{"-once", "-spread=false", "-derp-map", "file:///m.json", "-mesh-interval", "0", "-bw-interval", "1m", "-bw-probe-size-bytes", "5"}, config{
			derpMap: "file:///m.json", listen: ":8030", once: true,
			interval: 15 * time.Second, stunInterval: 15 * time.Second,
			tlsInterval: 15 * time.Second, bwInterval: time.Minute, bwSize: 5,
			qdTimeout: 5 * time.Second, secretsPath: "prod/derp", secretsCache: defaultSecretsCacheDir(),
		}},
		{[]string{"-dev", "-json", "-region-code", "900", "-mesh-psk-file", "/k", "-qd-packets-per-second", "20", "-qd-packet-timeout", "1s",
			"-bw-tun-ipv4-addr", "10.0.0.1", "-secrets-url", "u", "-secrets-path-prefix", "p", "-secrets-cache-dir", "/c"}, config{
			derpMap: "https://login.tailscale.com/derpmap/default", listen: ":8030", spread: true,
			interval: 15 * time.Second, meshInterval: 15 * time.Second, stunInterval: 15 * time.Second,
			tlsInterval: 15 * time.Second, bwSize: 1_000_000,
			dev: true, jsonOut: true, regionCode: "900", meshPSKFile: "/k", qdRate: 20, qdTimeout: time.Second,
			bwTUNAddr: "10.0.0.1", secretsURL: "u", secretsPath: "p", secretsCache: "/c",
		}},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("derpprobe", flag.ContinueOnError)
		got, err := parseFlags(fs, tt.args)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseFlags(%q) = %+v, %v; want %+v", tt.args, got, err, tt.want)
		}
	}
	fs := flag.NewFlagSet("derpprobe", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := parseFlags(fs, []string{"extra"}); err == nil {
		t.Errorf("parseFlags accepted a stray argument")
	}
}

const meshKey = "2222222222222222222222222222222222222222222222222222222222222222"

// region starts two meshed nodes and returns a DERP map file for them,
// plus a dead third node if withDead.
func region(t *testing.T, ca *probertest.CA, withDead bool) string {
	a := probertest.StartNode(t, probertest.NodeOpts{CA: ca, MeshKey: meshKey})
	b := probertest.StartNode(t, probertest.NodeOpts{CA: ca, MeshKey: meshKey})
	probertest.Mesh(t, ca, meshKey, a, b)
	nodes := []*derpmap.Node{a.MapNode("a", 900), b.MapNode("b", 900)}
	if withDead {
		nodes = append(nodes, probertest.DeadNode(t, "c", 900))
	}
	return probertest.WriteMap(t, &derpmap.Map{Regions: map[int]*derpmap.Region{
		900: probertest.Region(900, "lab", nodes...),
	}})
}

func testConfig(t *testing.T, mapURL string, ca *probertest.CA) config {
	fs := flag.NewFlagSet("derpprobe", flag.ContinueOnError)
	cfg, err := parseFlags(fs, []string{"-derp-map", mapURL, "-spread=false", "-listen", "127.0.0.1:0",
		"-interval", "10s", "-mesh-interval", "10s", "-stun-interval", "10s", "-tls-interval", "10s"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.tlsConfig = ca.TLSConfig()
	return cfg
}

// syncBuffer is a bytes.Buffer safe for a logger and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var resultLine = regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (good|bad): (\S+): (.*)$`)

// results returns the good and bad probe names in the order logged.
func results(log string) (good, bad []string) {
	for _, l := range strings.Split(log, "\n") {
		m := resultLine.FindStringSubmatch(l)
		switch {
		case m == nil:
		case m[1] == "good":
			good = append(good, m[2])
		default:
			bad = append(bad, m[2])
		}
	}
	return good, bad
}

func TestOnceHealthy(t *testing.T) {
	ca := probertest.NewCA(t)
	cfg := testConfig(t, region(t, ca, false), ca)
	cfg.once = true
	var out syncBuffer
	if err := run(t.Context(), cfg, log.New(&out, "", log.LstdFlags)); err != nil {
		t.Fatalf("run = %v; want nil\n%s", err, out.String())
	}
	good, bad := results(out.String())
	want := []string{"derp/lab/a/a/mesh", "derp/lab/a/b/mesh", "derp/lab/a/tls", "derp/lab/a/udp",
		"derp/lab/b/a/mesh", "derp/lab/b/b/mesh", "derp/lab/b/tls", "derp/lab/b/udp", "derpmap-probe"}
	if !slices.Equal(good, want) || len(bad) != 0 {
		t.Errorf("good %v, bad %v; want good %v only\n%s", good, bad, want, out.String())
	}
	if !strings.Contains(out.String(), "Waiting for all probes (may take up to 1m)") {
		t.Errorf("no waiting line")
	}
}

func TestOnceNodeDown(t *testing.T) {
	ca := probertest.NewCA(t)
	cfg := testConfig(t, region(t, ca, true), ca)
	cfg.once = true
	var out syncBuffer
	err := run(t.Context(), cfg, log.New(&out, "", log.LstdFlags))
	if !errors.Is(err, errProbesFailed) {
		t.Fatalf("run = %v; want errProbesFailed", err)
	}
	good, bad := results(out.String())
	wantBad := []string{"derp/lab/a/c/mesh", "derp/lab/b/c/mesh", "derp/lab/c/a/mesh", "derp/lab/c/b/mesh",
		"derp/lab/c/c/mesh", "derp/lab/c/tls", "derp/lab/c/udp"}
	if len(good) != 9 || !slices.Equal(bad, wantBad) {
		t.Errorf("good %v, bad %v; want 9 good, bad %v", good, bad, wantBad)
	}
	// Good lines come first.
	if i, j := strings.LastIndex(out.String(), " good: "), strings.Index(out.String(), " bad: "); i > j {
		t.Errorf("a good line follows a bad line")
	}
}

func TestOnceLocalWithoutTailscaled(t *testing.T) {
	ca := probertest.NewCA(t)
	cfg := testConfig(t, "local", ca)
	cfg.once = true
	var out syncBuffer
	err := run(t.Context(), cfg, log.New(&out, "", log.LstdFlags))
	if !errors.Is(err, errProbesFailed) || !strings.Contains(out.String(), "bad: derpmap-probe: derpmap: no tailscaled") {
		t.Errorf("run = %v; log:\n%s", err, out.String())
	}
}

// serve runs derpprobe in server mode until the test ends and returns
// its base URL once every probe has run.
func serve(t *testing.T, cfg config, probes int) string {
	addrc := make(chan net.Addr, 1)
	cfg.listening = func(a net.Addr) { addrc <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out syncBuffer
	go func() { done <- run(ctx, cfg, log.New(&out, "", log.LstdFlags)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run = %v", err)
		}
	})
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a.String()
	case err := <-done:
		t.Fatalf("run ended early: %v\n%s", err, out.String())
	}
	// Wait, bounded, until all probes have finished a run.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var st prober.Status
		res, err := http.Get(base + "/?format=json")
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(res.Body).Decode(&st)
		res.Body.Close()
		ran := 0
		for _, p := range st.Probes {
			if !p.End.IsZero() {
				ran++
			}
		}
		if st.Total == probes && ran == probes {
			return base
		}
		if time.Now().After(deadline) {
			t.Fatalf("probes did not all run: %+v", st)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

func TestServeDebugAccess(t *testing.T) {
	ca := probertest.NewCA(t)
	base := serve(t, testConfig(t, region(t, ca, false), ca), 9)
	tests := []struct {
		path, xff string
		code      int
		body      string
	}{
		{"/debug/probe-run?name=derp/lab/a/tls", "", 200, "ok in "},
		{"/debug/probe-run?name=nope", "", 404, "no probe named \"nope\" can be run on demand"},
		{"/debug/probe-run?name=derp/lab/a/tls", "192.0.2.1", 403, "debug pages are not open to this address"},
		{"/debug/varz", "", 200, `derpprobe_result{class="tls",hostname="localhost",name="derp/lab/a/tls",region="lab",region_id="900"} 1`},
		{"/some/other/path", "", 200, "All 9 probes are healthy"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest("GET", base+tt.path, nil)
		if tt.xff != "" {
			req.Header.Set("X-Forwarded-For", tt.xff)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tt.code || !strings.Contains(string(body), tt.body) {
			t.Errorf("GET %s = %d %.300q; want %d containing %q", tt.path, res.StatusCode, body, tt.code, tt.body)
		}
	}
}

// chromium returns the path of a Chromium binary, installing it through
// scripts/chromium.sh if needed, or skips the test when that is
// impossible.
func chromium(t *testing.T) string {
	script, _ := filepath.Abs("../../scripts/chromium.sh")
	out, err := exec.Command(script).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 3 {
		t.Skipf("no Chromium: %s", ee.Stderr)
	}
	if err != nil {
		t.Fatalf("scripts/chromium.sh: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// dumpDOM loads url in headless Chromium and returns the DOM after its
// scripts ran.
func dumpDOM(t *testing.T, browser, url string) string {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--dump-dom", url)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom %s: %v\n%s", url, err, stderr.String())
	}
	return string(out)
}

func TestStatusPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	browser := chromium(t)
	ca := probertest.NewCA(t)
	base := serve(t, testConfig(t, region(t, ca, true), ca), 16)

	dom := dumpDOM(t, browser, base+"/")
	for _, want := range []string{
		"<title>DERP Prober</title>",
		`<p id="summary">7 out of 16 probes failed</p>`,
		`data-sparklines="16"`, // every row's history was laid out
		`<a id="metrics" href="/debug/varz">Prober metrics</a>`,
		`data-sortable="ready"`, // the inline script ran
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	rows := regexp.MustCompile(`<tr class="probe (succeeded|failed)" data-name="([^"]+)">`).FindAllStringSubmatch(dom, -1)
	if len(rows) != 16 {
		t.Fatalf("rendered %d probe rows; want 16\n%s", len(rows), dom)
	}
	buttons := make(map[string]string) // probe name -> href
	for _, m := range regexp.MustCompile(`<a class="run" href="([^"]+)">Run Probe</a>`).FindAllStringSubmatch(dom, -1) {
		u, err := url.Parse(html.UnescapeString(m[1]))
		if err != nil || u.Path != "/debug/probe-run" {
			t.Errorf("bad Run Probe link %q", m[1])
			continue
		}
		buttons[u.Query().Get("name")] = u.String()
	}
	fails := 0
	for i, r := range rows {
		if r[1] == "failed" {
			fails++
			if !strings.Contains(r[2], "/c/") {
				t.Errorf("row %s failed", r[2])
			}
		}
		if i > 0 && rows[i-1][2] > r[2] {
			t.Errorf("rows not sorted by name: %s before %s", rows[i-1][2], r[2])
		}
		if _, ok := buttons[r[2]]; !ok {
			t.Errorf("no Run Probe button for %s", r[2])
		}
	}
	if fails != 7 {
		t.Errorf("%d failing rows; want 7", fails)
	}

	// Following a row's button runs the probe.
	run := dumpDOM(t, browser, base+buttons["derp/lab/a/b/mesh"])
	if !strings.Contains(run, "ok in ") || !regexp.MustCompile(`recent runs, this one included: \d+, of which 100% ok`).MatchString(run) {
		t.Errorf("probe-run page in Chromium:\n%s", run)
	}
	run = dumpDOM(t, browser, base+buttons["derp/lab/c/tls"])
	if !strings.Contains(run, "failed: connecting to localhost:") {
		t.Errorf("failing probe-run page in Chromium:\n%s", run)
	}
}

func TestServeFollowsMapChanges(t *testing.T) {
	ca := probertest.NewCA(t)
	a := probertest.StartNode(t, probertest.NodeOpts{CA: ca})
	m := &derpmap.Map{Regions: map[int]*derpmap.Region{
		900: probertest.Region(900, "lab", a.MapNode("a", 900), probertest.DeadNode(t, "c", 900)),
	}}
	mapURL := probertest.WriteMap(t, m)
	base := serve(t, testConfig(t, mapURL, ca), 9)

	// Node c leaves the map; re-reading it now drops c's probes.
	m.Regions[900].Nodes = m.Regions[900].Nodes[:1]
	b, _ := json.Marshal(m)
	if err := os.WriteFile(strings.TrimPrefix(mapURL, "file://"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(base + "/debug/probe-run?name=derpmap-probe")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("running derpmap-probe: %s", res.Status)
	}
	res, err = http.Get(base + "/?format=json")
	if err != nil {
		t.Fatal(err)
	}
	var st prober.Status
	json.NewDecoder(res.Body).Decode(&st)
	res.Body.Close()
	var names []string
	for _, p := range st.Probes {
		names = append(names, p.Name)
	}
	want := []string{"derp/lab/a/a/mesh", "derp/lab/a/tls", "derp/lab/a/udp", "derpmap-probe"}
	if !slices.Equal(names, want) {
		t.Errorf("probes after the map change: %v; want %v", names, want)
	}
}
