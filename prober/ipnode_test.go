package prober_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/openderp/openderp/derpmap"
	"github.com/openderp/openderp/prober"
	"github.com/openderp/openderp/prober/probertest"
)

// TestIPOnlyNodes probes nodes whose HostName is an IP literal, so that
// no SNI is sent: one verified by the CA (its certificate carries the IP)
// and one pinned by sha256-raw: with no trusted root at all. Every probe
// kind passes, the mesh probe included (the reference's fails for want
// of an SNI); a wrong pin fails.
func TestIPOnlyNodes(t *testing.T) {
	ca := probertest.NewCA(t)
	a := probertest.StartNode(t, probertest.NodeOpts{CA: ca, MeshKey: testMeshKey})
	b := probertest.StartNode(t, probertest.NodeOpts{CA: ca, MeshKey: testMeshKey})
	probertest.Mesh(t, ca, testMeshKey, a, b)
	leaf := ca.Leaf(t, probertest.LeafOpts{})
	pinned := probertest.StartNode(t, probertest.NodeOpts{CA: ca, Leaf: &leaf})
	sum := sha256.Sum256(leaf.Certificate[0])
	pin := "sha256-raw:" + hex.EncodeToString(sum[:])

	ipNode := func(n *probertest.Node, name string, region int, certName string) *derpmap.Node {
		mn := n.MapNode(name, region)
		mn.HostName = "127.0.0.1"
		mn.CertName = certName
		return mn
	}
	src := &mapSource{m: &derpmap.Map{Regions: map[int]*derpmap.Region{
		1: probertest.Region(1, "ca", ipNode(a, "a", 1, ""), ipNode(b, "b", 1, "")),
		2: probertest.Region(2, "pin", ipNode(pinned, "p", 2, pin)),
		3: probertest.Region(3, "badpin", ipNode(pinned, "q", 3, "sha256-raw:"+strings.Repeat("0", 64))),
		4: probertest.Region(4, "uppin", ipNode(pinned, "u", 4, "sha256-raw:"+strings.ToUpper(hex.EncodeToString(sum[:])))),
	}}}
	p := prober.New().WithOnce(true)
	defer p.Close()
	dp, err := prober.DERP(p, "https://example.invalid/", prober.WithFetch(src.fetch),
		prober.WithTLSConfig(ca.TLSConfig()),
		prober.WithTLSProbing(10*time.Second), prober.WithMeshProbing(10*time.Second),
		prober.WithBandwidthProbing(10*time.Second, 10_000), prober.WithQueuingDelayProbing(20, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	p.Run("derpmap-probe", 10*time.Second, nil, dp.ProbeMap())
	p.Wait()
	infos := p.ProbeInfo()
	for name, info := range infos {
		wantOK := !strings.Contains(name, "/badpin/") && !strings.Contains(name, "/uppin/")
		if info.Succeeded() != wantOK {
			t.Errorf("%s: ok %v (error %q); want %v", name, info.Succeeded(), info.Error, wantOK)
		}
		if !wantOK && !strings.Contains(info.Error, "does not match the pinned") {
			t.Errorf("%s: error %q; want a pin mismatch", name, info.Error)
		}
	}
	if len(infos) != 1+(2+4+4+4)+3*4 { // map; region ca; three one-node regions
		t.Errorf("%d probes: %v", len(infos), infos)
	}
}
