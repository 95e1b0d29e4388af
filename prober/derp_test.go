package prober_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/openderp/openderp/derpmap"
	"github.com/openderp/openderp/prober"
	"github.com/openderp/openderp/prober/probertest"
)

const testMeshKey = "1111111111111111111111111111111111111111111111111111111111111111"

// testRegion starts two meshed nodes, a and b, and describes them with a
// third, dead node c as region 900 "lab".
func testRegion(t *testing.T, ca *probertest.CA) *derpmap.Map {
	a := probertest.StartNode(t, probertest.NodeOpts{CA: ca, MeshKey: testMeshKey})
	b := probertest.StartNode(t, probertest.NodeOpts{CA: ca, MeshKey: testMeshKey})
	probertest.Mesh(t, ca, testMeshKey, a, b)
	return &derpmap.Map{Regions: map[int]*derpmap.Region{
		900: probertest.Region(900, "lab", a.MapNode("a", 900), b.MapNode("b", 900), probertest.DeadNode(t, "c", 900)),
	}}
}

func TestDERPEndToEnd(t *testing.T) {
	ca := probertest.NewCA(t)
	m := testRegion(t, ca)
	p := prober.New().WithOnce(true).WithMetricNamespace("derpprobe")
	defer p.Close()
	dp, err := prober.DERP(p, probertest.WriteMap(t, m),
		prober.WithTLSConfig(ca.TLSConfig()),
		prober.WithMeshProbing(10*time.Second),
		prober.WithSTUNProbing(10*time.Second),
		prober.WithTLSProbing(10*time.Second),
		prober.WithBandwidthProbing(10*time.Second, 100_000))
	if err != nil {
		t.Fatal(err)
	}
	p.Run("derpmap-probe", 10*time.Second, nil, dp.ProbeMap())
	p.Wait()

	infos := p.ProbeInfo()
	var good, bad []string
	for name, info := range infos {
		if info.End.IsZero() {
			t.Errorf("%s never finished", name)
		}
		if info.Succeeded() {
			good = append(good, name)
		} else {
			bad = append(bad, name)
			t.Logf("%s: %s", name, info.Error)
		}
	}
	slices.Sort(good)
	slices.Sort(bad)
	wantGood := []string{"derp/lab/a/a/bw", "derp/lab/a/a/mesh", "derp/lab/a/b/bw", "derp/lab/a/b/mesh",
		"derp/lab/a/tls", "derp/lab/a/udp",
		"derp/lab/b/a/bw", "derp/lab/b/a/mesh", "derp/lab/b/b/bw", "derp/lab/b/b/mesh",
		"derp/lab/b/tls", "derp/lab/b/udp", "derpmap-probe"}
	wantBad := []string{"derp/lab/a/c/bw", "derp/lab/a/c/mesh", "derp/lab/b/c/bw", "derp/lab/b/c/mesh",
		"derp/lab/c/a/bw", "derp/lab/c/a/mesh", "derp/lab/c/b/bw", "derp/lab/c/b/mesh",
		"derp/lab/c/c/bw", "derp/lab/c/c/mesh", "derp/lab/c/tls", "derp/lab/c/udp"}
	if !slices.Equal(good, wantGood) {
		t.Errorf("good probes:\n%v\nwant\n%v", good, wantGood)
	}
	if !slices.Equal(bad, wantBad) {
		t.Errorf("bad probes:\n%v\nwant\n%v", bad, wantBad)
	}
	// No udp6 probes: IPv6 is "none".
	if slices.ContainsFunc(slices.Collect(maps.Keys(infos)), func(s string) bool { return strings.HasSuffix(s, "udp6") }) {
		t.Errorf("udp6 probe made for a node with IPv6 \"none\"")
	}
	if e := infos["derp/lab/c/udp"].Error; !strings.Contains(e, "error reading from 127.0.0.1") {
		t.Errorf("dead STUN error = %q", e)
	}

	mesh := infos["derp/lab/a/b/mesh"]
	wantLabels := prober.Labels{"region": "lab", "region_id": "900", "hostname": "localhost", "derp_path": "mesh"}
	if mesh.Class != "derp_mesh" || !maps.Equal(mesh.Labels, wantLabels) {
		t.Errorf("mesh probe class %q labels %v; want derp_mesh, %v", mesh.Class, mesh.Labels, wantLabels)
	}
	if l := infos["derp/lab/a/a/mesh"].Labels["derp_path"]; l != "single" {
		t.Errorf("a->a derp_path = %q; want single", l)
	}

	// The bandwidth extras carry the probe's labels and the namespace.
	if n := testutil.CollectAndCount(p, "derpprobe_derp_bw_probe_size_bytes"); n != 9 {
		t.Errorf("derpprobe_derp_bw_probe_size_bytes series = %d; want 9", n)
	}
	if n := testutil.CollectAndCount(p, "derpprobe_derp_bw_transfer_time_seconds_total"); n != 9 {
		t.Errorf("derpprobe_derp_bw_transfer_time_seconds_total series = %d; want 9", n)
	}
	if n := testutil.CollectAndCount(p, "derpprobe_tls_leaf_expiry_seconds"); n != 2 {
		t.Errorf("derpprobe_tls_leaf_expiry_seconds series = %d; want 2", n)
	}
}

// mapSource serves maps from memory to DERP's fetch hook.
type mapSource struct {
	m   *derpmap.Map
	err error
}

func (s *mapSource) fetch(context.Context, string) (*derpmap.Map, error) { return s.m, s.err }

func TestDERPMapChanges(t *testing.T) {
	p := prober.New().WithSpread(true)
	defer p.Close()
	node := func(name string, region int) *derpmap.Node {
		return &derpmap.Node{Name: name, RegionID: region, HostName: name + ".test", IPv4: "192.0.2.1", IPv6: "2001:db8::1"}
	}
	src := &mapSource{m: &derpmap.Map{Regions: map[int]*derpmap.Region{
		1: probertest.Region(1, "one", node("1a", 1), node("1b", 1)),
	}}}
	dp, err := prober.DERP(p, "https://example.invalid/derpmap", prober.WithFetch(src.fetch),
		prober.WithMeshProbing(time.Hour), prober.WithSTUNProbing(time.Hour), prober.WithTLSProbing(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	probe := dp.ProbeMap().Probe
	if err := probe(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := []string{"derp/one/1a/1a/mesh", "derp/one/1a/1b/mesh", "derp/one/1a/tls", "derp/one/1a/udp", "derp/one/1a/udp6",
		"derp/one/1b/1a/mesh", "derp/one/1b/1b/mesh", "derp/one/1b/tls", "derp/one/1b/udp", "derp/one/1b/udp6"}
	if got := dp.ProbeNames(); !slices.Equal(got, want) {
		t.Fatalf("probes:\n%v\nwant\n%v", got, want)
	}

	// 1b goes, region 2 comes with a node without STUN and one with IPv4
	// only.
	n2a, n2b := node("2a", 2), node("2b", 2)
	n2a.STUNPort = -1
	n2b.IPv6 = "none"
	src.m = &derpmap.Map{Regions: map[int]*derpmap.Region{
		1: probertest.Region(1, "one", node("1a", 1)),
		2: probertest.Region(2, "two", n2a, n2b),
	}}
	if err := probe(t.Context()); err != nil {
		t.Fatal(err)
	}
	want = []string{"derp/one/1a/1a/mesh", "derp/one/1a/tls", "derp/one/1a/udp", "derp/one/1a/udp6",
		"derp/two/2a/2a/mesh", "derp/two/2a/2b/mesh", "derp/two/2a/tls",
		"derp/two/2b/2a/mesh", "derp/two/2b/2b/mesh", "derp/two/2b/tls", "derp/two/2b/udp"}
	if got := dp.ProbeNames(); !slices.Equal(got, want) {
		t.Fatalf("probes after change:\n%v\nwant\n%v", got, want)
	}
	if p.Probe("derp/one/1b/tls") != nil {
		t.Errorf("removed node's probe still registered")
	}

	// A transport error with a fresh cached map is not a failure.
	src.err = fmt.Errorf("fetching: %w", &url.Error{Op: "Get", URL: "https://example.invalid/derpmap", Err: errors.New("connection refused")})
	if err := probe(t.Context()); err != nil {
		t.Errorf("probe with cached map = %v; want nil", err)
	}
	// Other errors are.
	src.err = errors.New("derpmap: fetching x: 500 Internal Server Error")
	if err := probe(t.Context()); err == nil {
		t.Errorf("probe after a status error succeeded")
	}
	src.err = nil

	// Duplicate node names fail the run and change nothing.
	src.m = &derpmap.Map{Regions: map[int]*derpmap.Region{
		1: probertest.Region(1, "one", node("1a", 1)),
		2: probertest.Region(2, "two", node("1a", 2)),
	}}
	if err := probe(t.Context()); err == nil || !strings.Contains(err.Error(), "duplicate nodes") {
		t.Errorf("probe of a map with duplicate nodes = %v", err)
	}
	if got := dp.ProbeNames(); !slices.Equal(got, want) {
		t.Errorf("probes changed by a bad map")
	}
}

func TestDERPSources(t *testing.T) {
	p := prober.New()
	defer p.Close()
	if _, err := prober.DERP(p, "ftp://x/y"); err == nil {
		t.Errorf("DERP accepted an ftp URL")
	}
	dp, err := prober.DERP(p, "local")
	if err != nil {
		t.Fatal(err)
	}
	err = dp.ProbeMap().Probe(t.Context())
	if !errors.Is(err, derpmap.ErrNoTailscaled) {
		t.Errorf("local map without tailscaled: %v; want ErrNoTailscaled", err)
	}
}

func TestMeshProbeWithoutMesh(t *testing.T) {
	// Two nodes that do not mesh: a packet from a client on a to a client
	// on b is dropped, so the probe must end at its timeout, cleanly.
	ca := probertest.NewCA(t)
	a := probertest.StartNode(t, probertest.NodeOpts{CA: ca})
	b := probertest.StartNode(t, probertest.NodeOpts{CA: ca})
	src := &mapSource{m: &derpmap.Map{Regions: map[int]*derpmap.Region{
		1: probertest.Region(1, "x", a.MapNode("a", 1), b.MapNode("b", 1)),
	}}}
	// Every probe has 2.4 s (0.8 of the interval), which the unmeshed
	// pairs always use up. On a loaded machine under -race, connecting
	// (TLS and the DERP handshake, two clients per probe) can alone take
	// that long; such a run says nothing about the nodes, so it is
	// repeated, at most three times. Any other failure fails at once.
	for attempt := 1; ; attempt++ {
		infos := runMeshProbesOnce(t, ca, src)
		setupFailed := false
		for _, info := range infos {
			if !info.Succeeded() && isConnectFailure(info.Error) {
				setupFailed = true
			}
		}
		if setupFailed && attempt < 3 {
			t.Logf("attempt %d: a probe could not connect in time; again", attempt)
			continue
		}
		for _, name := range []string{"derp/x/a/a/mesh", "derp/x/b/b/mesh"} {
			if !infos[name].Succeeded() {
				t.Errorf("%s failed: %s", name, infos[name].Error)
			}
		}
		for _, name := range []string{"derp/x/a/b/mesh", "derp/x/b/a/mesh"} {
			info := infos[name]
			if info.Succeeded() || !strings.Contains(info.Error, "timeout") || !strings.Contains(info.Error, "] -> [") {
				t.Errorf("%s: Result %v Error %q; want a timeout between two short keys", name, info.Succeeded(), info.Error)
			}
		}
		return
	}
}

// runMeshProbesOnce runs every mesh probe of src's map once and returns
// their results.
func runMeshProbesOnce(t *testing.T, ca *probertest.CA, src *mapSource) map[string]prober.ProbeInfo {
	t.Helper()
	p := prober.New().WithOnce(true)
	defer p.Close()
	dp, err := prober.DERP(p, "https://example.invalid/", prober.WithFetch(src.fetch),
		prober.WithTLSConfig(ca.TLSConfig()), prober.WithMeshProbing(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	p.Run("derpmap-probe", 3*time.Second, nil, dp.ProbeMap())
	p.Wait()
	return p.ProbeInfo()
}

// isConnectFailure reports whether a probe error is about setting up its
// clients (connecting, the TLS or DERP handshake) rather than about
// packets between them.
func isConnectFailure(msg string) bool {
	return strings.Contains(msg, "connecting to node") || strings.Contains(msg, "waiting for server info")
}

func TestDERPMapOverHTTP(t *testing.T) {
	m := &derpmap.Map{Regions: map[int]*derpmap.Region{
		1: probertest.Region(1, "one", &derpmap.Node{Name: "1a", RegionID: 1, HostName: "1a.test", IPv4: "192.0.2.1"}),
	}}
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code := int(status.Load()); code != http.StatusOK {
			http.Error(w, "nope", code)
			return
		}
		json.NewEncoder(w).Encode(m)
	}))
	defer srv.Close()
	p := prober.New().WithSpread(true)
	defer p.Close()
	dp, err := prober.DERP(p, srv.URL+"/derpmap/default", prober.WithTLSProbing(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	probe := dp.ProbeMap().Probe
	if err := probe(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := dp.ProbeNames(); !slices.Equal(got, []string{"derp/one/1a/tls"}) {
		t.Errorf("probes = %v", got)
	}
	status.Store(http.StatusInternalServerError)
	if err := probe(t.Context()); err == nil || !strings.Contains(err.Error(), "500") {
		t.Errorf("probe with a 500 answer = %v; want an error naming the status", err)
	}
	// Server gone: a transport error, so the cached map stands in.
	srv.Close()
	if err := probe(t.Context()); err != nil {
		t.Errorf("probe with the server gone = %v; want nil (cached map)", err)
	}
	if got := dp.ProbeNames(); !slices.Equal(got, []string{"derp/one/1a/tls"}) {
		t.Errorf("probes after a failed fetch = %v", got)
	}
}
