package prober_test

import (
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/openderp/openderp/prober"
	"github.com/openderp/openderp/prober/probertest"
)

// openTestTUN creates a TUN device in 198.18.0.0/15 (reserved for
// benchmarking, so no real network uses it), or skips the test saying
// why it cannot.
func openTestTUN(t *testing.T) *prober.TUN {
	t.Helper()
	name := fmt.Sprintf("dpt%d", os.Getpid()%100000)
	addr := netip.AddrFrom4([4]byte{198, 18, byte(os.Getpid() >> 8), byte(os.Getpid()) &^ 3})
	tun, err := prober.OpenTUN(name, addr)
	if err != nil {
		t.Skipf("cannot create a TUN device here (needs Linux, /dev/net/tun and CAP_NET_ADMIN): %v", err)
	}
	t.Cleanup(func() { tun.Close() })
	return tun
}

func TestTUNAddrs(t *testing.T) {
	for _, tt := range []struct{ in, local, peer string }{
		{"10.9.8.1", "10.9.8.1", "10.9.8.2"},
		{"10.9.8.2", "10.9.8.1", "10.9.8.2"}, // the reference cannot bind here
		{"10.9.8.7", "10.9.8.5", "10.9.8.6"},
	} {
		local, peer, err := prober.TUNAddrs(netip.MustParseAddr(tt.in))
		if err != nil || local.String() != tt.local || peer.String() != tt.peer {
			t.Errorf("TUNAddrs(%s) = %v, %v, %v; want %s, %s", tt.in, local, peer, err, tt.local, tt.peer)
		}
	}
	if _, _, err := prober.TUNAddrs(netip.MustParseAddr("fd00::1")); err == nil {
		t.Errorf("TUNAddrs accepted IPv6")
	}
}

func TestTUNBandwidthProbe(t *testing.T) {
	tun := openTestTUN(t)
	ca := probertest.NewCA(t)
	m := testRegion(t, ca)
	m.Regions[900].Nodes = m.Regions[900].Nodes[:2] // a and b
	p := prober.New().WithOnce(true).WithMetricNamespace("derpprobe")
	defer p.Close()
	const size = 300_000
	dp, err := prober.DERP(p, probertest.WriteMap(t, m), prober.WithTLSConfig(ca.TLSConfig()),
		prober.WithMeshKey(testMeshKey),
		prober.WithBandwidthProbing(20*time.Second, size), prober.WithBandwidthTUN(tun))
	if err != nil {
		t.Fatal(err)
	}
	p.Run("derpmap-probe", 10*time.Second, nil, dp.ProbeMap())
	p.Wait()
	infos := p.ProbeInfo()
	for _, name := range []string{"derp/lab/a/a/bw", "derp/lab/a/b/bw", "derp/lab/b/a/bw", "derp/lab/b/b/bw"} {
		info := infos[name]
		if !info.Succeeded() || info.Labels["tcp_in_tcp"] != "true" {
			t.Errorf("%s: ok %v error %q labels %v", name, info.Succeeded(), info.Error, info.Labels)
		}
	}
	for _, m := range gatherOne(t, p, "derpprobe_derp_bw_bytes_total").GetMetric() {
		if v := m.GetCounter().GetValue(); v != size {
			t.Errorf("%s: derp_bw_bytes_total %v; want %d", labelOf(m, "name"), v, size)
		}
	}
}
