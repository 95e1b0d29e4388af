// Package theirprober runs the reference's DERP prober against a region
// of our derpers. It is its own test binary because the reference's TLS
// dialer trusts only the system roots, which a process loads once: the
// test adds its CA to them (SSL_CERT_FILE) before anything verifies.
package theirprober

import (
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openderp/openderp/derpmap"
	"github.com/openderp/openderp/prober/probertest"
	tsprober "tailscale.com/prober"
)

// The reference's prober (mesh and STUN probes) against a region of two
// meshed openderp nodes: every probe succeeds, as against the reference's
// own derpers. (Its TLS probe demands OCSP, which test certificates lack,
// so it fails for both implementations alike and is not run.)
func TestTheirProberOurRegion(t *testing.T) {
	ca := probertest.NewCA(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", caFile)

	const meshKey = "2222222222222222222222222222222222222222222222222222222222222222"
	a := probertest.StartNode(t, probertest.NodeOpts{CA: ca, MeshKey: meshKey})
	b := probertest.StartNode(t, probertest.NodeOpts{CA: ca, MeshKey: meshKey})
	probertest.Mesh(t, ca, meshKey, a, b)
	m := &derpmap.Map{Regions: map[int]*derpmap.Region{
		1: probertest.Region(1, "test", a.MapNode("1a", 1), b.MapNode("1b", 1)),
	}}
	mapFile := probertest.WriteMap(t, m)

	p := tsprober.New().WithOnce(true)
	dp, err := tsprober.DERP(p, "file://"+mapFile,
		tsprober.WithMeshProbing(time.Second),
		tsprober.WithSTUNProbing(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	p.Run("derpmap-probe", time.Second, nil, dp.ProbeMap)
	p.Wait()

	var names []string
	for name, info := range p.ProbeInfo() {
		names = append(names, name)
		// The nodes have IPv6 "none". The reference still makes a udp6
		// probe for them, aimed at no address, which fails whatever the
		// server (REFERENCE.md §8.6, a quirk our prober fixes).
		if strings.HasSuffix(name, "/udp6") {
			if info.Result || !strings.Contains(info.Error, "<nil>") {
				t.Errorf("probe %s: result %v, %q; want the reference's nil-address failure", name, info.Result, info.Error)
			}
			continue
		}
		if !info.Result {
			t.Errorf("probe %s failed: %s", name, info.Error)
		}
	}
	// The map probe, four STUN probes (udp, udp6 per node) and four mesh
	// probes (every ordered pair, each node to itself included).
	if len(names) != 9 {
		t.Errorf("probes run: %s; want 9", strings.Join(names, ", "))
	}
}
