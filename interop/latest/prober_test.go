package latest

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ourderp "github.com/openderp/openderp/derp"
	ourhttp "github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/derpmap"
	ourkey "github.com/openderp/openderp/key"
	"github.com/openderp/openderp/prober"
	"github.com/openderp/openderp/prober/probertest"

	tsderp "tailscale.com/derp"
	tshttp "tailscale.com/derp/derphttp"
	"tailscale.com/derp/derpserver"
	"tailscale.com/net/netmon"
	"tailscale.com/net/stunserver"
	tskey "tailscale.com/types/key"
)

const probeMeshKey = "3333333333333333333333333333333333333333333333333333333333333333"

// theirNode is a reference DERP server (their derpserver.Server behind
// their derpserver.Handler) on HTTPS on loopback, with their STUN server.
type theirNode struct {
	s        *derpserver.Server
	port     int
	stunPort int
	url      string
}

// startTheirNode starts a reference node that admits only mesh peers:
// client verification asks a tailscaled that is not there.
func startTheirNode(t *testing.T, ca *probertest.CA) *theirNode {
	s := derpserver.New(tskey.NewNode(), t.Logf)
	if err := s.SetMeshKey(probeMeshKey); err != nil {
		t.Fatal(err)
	}
	s.SetVerifyClient(true)
	s.SetTailscaledSocketPath(filepath.Join(t.TempDir(), "no-tailscaled.sock"))
	mux := http.NewServeMux()
	mux.Handle("/derp", derpserver.Handler(s))
	mux.HandleFunc("/derp/probe", derpserver.ProbeHandler)
	hs := httptest.NewUnstartedServer(mux)
	leaf := ca.Leaf(t, probertest.LeafOpts{})
	hs.TLS = &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &leaf, nil }}
	s.ModifyTLSConfigToAddMetaCert(hs.TLS)
	hs.Config.ErrorLog = log.New(io.Discard, "", 0)
	hs.StartTLS()

	ctx, cancel := context.WithCancel(context.Background())
	stun := stunserver.New(ctx)
	if err := stun.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	stunDone := make(chan struct{})
	go func() {
		defer close(stunDone)
		stun.Serve()
	}()
	n := &theirNode{
		s:        s,
		port:     hs.Listener.Addr().(*net.TCPAddr).Port,
		stunPort: stun.LocalAddr().(*net.UDPAddr).Port,
	}
	// By name: their client verifies an IP URL's certificate against no
	// name at all.
	n.url = "https://" + probertest.HostName + ":" + strconv.Itoa(n.port) + "/derp"
	t.Cleanup(func() {
		cancel()
		<-stunDone
		s.Close()
		hs.Close()
	})
	return n
}

func (n *theirNode) mapNode(name string, region int) *derpmap.Node {
	return &derpmap.Node{Name: name, RegionID: region, HostName: probertest.HostName,
		IPv4: "127.0.0.1", IPv6: "none", DERPPort: n.port, STUNPort: n.stunPort}
}

// meshTheirs makes two reference nodes forward to each other's clients
// with their own mesh client, as their derper does.
func meshTheirs(t *testing.T, ca *probertest.CA, nodes ...*theirNode) {
	mk, err := tskey.ParseDERPMesh(probeMeshKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var clients []*tshttp.Client
	for _, x := range nodes {
		for _, y := range nodes {
			if x == y {
				continue
			}
			c, err := tshttp.NewClient(x.s.PrivateKey(), y.url, t.Logf, netmon.NewStatic())
			if err != nil {
				t.Fatal(err)
			}
			c.MeshKey = mk
			c.TLSConfig = &tls.Config{RootCAs: ca.Pool}
			clients = append(clients, c)
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.RunWatchConnectionLoop(ctx, x.s.PublicKey(), t.Logf,
					func(m tsderp.PeerPresentMessage) { x.s.AddPacketForwarder(m.Key, c) },
					func(m tsderp.PeerGoneMessage) { x.s.RemovePacketForwarder(m.Peer, c) },
					nil)
			}()
		}
	}
	t.Cleanup(func() {
		cancel()
		for _, c := range clients {
			c.Close()
		}
		wg.Wait()
	})
}

// TestOurProberBothRelays runs our prober, configured as derpprobe
// configures it (-once, -mesh-psk-file, -bw-interval,
// -qd-packets-per-second), against a region of two meshed reference
// derpers (tailscale.com v1.102.5) and a region of two meshed openderp
// servers, all admitting only mesh peers. Every probe passes: TLS (CRL
// and OCSP-free certificates), STUN, mesh, bandwidth and queuing delay.
func TestOurProberBothRelays(t *testing.T) {
	ca := probertest.NewCA(t)
	ta, tb := startTheirNode(t, ca), startTheirNode(t, ca)
	meshTheirs(t, ca, ta, tb)
	oa := probertest.StartNode(t, probertest.NodeOpts{CA: ca, MeshKey: probeMeshKey, VerifyClients: true})
	ob := probertest.StartNode(t, probertest.NodeOpts{CA: ca, MeshKey: probeMeshKey, VerifyClients: true})
	probertest.Mesh(t, ca, probeMeshKey, oa, ob)
	for _, pair := range [][2]string{{ta.url, tb.url}, {tb.url, ta.url}, {oa.URL, ob.URL}, {ob.URL, oa.URL}} {
		waitMeshed(t, ca, pair[0], pair[1])
	}
	m := &derpmap.Map{Regions: map[int]*derpmap.Region{
		900: probertest.Region(900, "theirs", ta.mapNode("ta", 900), tb.mapNode("tb", 900)),
		901: probertest.Region(901, "ours", oa.MapNode("oa", 901), ob.MapNode("ob", 901)),
	}}

	for _, tt := range []struct {
		name string
		tun  bool
	}{{"packets", false}, {"tcp over tun", true}} {
		t.Run(tt.name, func(t *testing.T) {
			opts := []prober.DERPOpt{
				prober.WithTLSConfig(ca.TLSConfig()),
				prober.WithMeshKey(probeMeshKey),
				prober.WithTLSProbing(20 * time.Second),
				prober.WithSTUNProbing(20 * time.Second),
				prober.WithMeshProbing(20 * time.Second),
				prober.WithBandwidthProbing(20*time.Second, 200_000),
				prober.WithQueuingDelayProbing(20, 5*time.Second),
			}
			if tt.tun {
				tun, err := prober.OpenTUN("dpinterop", netip.MustParseAddr("198.19.253.1"))
				if err != nil {
					t.Skipf("cannot create a TUN device here (needs Linux, /dev/net/tun and CAP_NET_ADMIN): %v", err)
				}
				defer tun.Close()
				opts = append(opts, prober.WithBandwidthTUN(tun))
			}
			p := prober.New().WithOnce(true).WithMetricNamespace("derpprobe")
			defer p.Close()
			dp, err := prober.DERP(p, probertest.WriteMap(t, m), opts...)
			if err != nil {
				t.Fatal(err)
			}
			p.Run("derpmap-probe", 20*time.Second, nil, dp.ProbeMap())
			p.Wait()
			kinds := map[string]int{}
			for name, info := range p.ProbeInfo() {
				kinds[name[strings.LastIndex(name, "/")+1:]]++
				if !info.Succeeded() {
					t.Errorf("%s: %s", name, info.Error)
				}
			}
			// Per region: 2 tls, 2 udp, and 4 each of mesh, bw and qd.
			want := map[string]int{"derpmap-probe": 1, "tls": 4, "udp": 4, "mesh": 8, "bw": 8, "qd": 8}
			for k, n := range want {
				if kinds[k] != n {
					t.Errorf("%d %s probes; want %d (all: %v)", kinds[k], k, n, kinds)
				}
			}
		})
	}
}

// waitMeshed waits until a packet sent by a client of the server at from
// reaches a client of the server at to, that is until the mesh between
// them carries traffic, retrying every 100ms for at most 30s.
func waitMeshed(t *testing.T, ca *probertest.CA, from, to string) {
	t.Helper()
	mk := func(url string) *ourhttp.Client {
		c, err := ourhttp.NewClient(ourkey.NewNode(), url, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		c.MeshKey = probeMeshKey // admitted by servers that verify clients
		c.TLSConfig = ca.TLSConfig()
		return c
	}
	src, dst := mk(from), mk(to)
	defer src.Close()
	defer dst.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := src.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := dst.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{}, 1)
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		for {
			m, err := dst.Recv()
			if err != nil {
				return
			}
			if p, ok := m.(ourderp.ReceivedPacket); ok && p.Source == src.SelfPublicKey() {
				select {
				case got <- struct{}{}:
				default:
				}
			}
		}
	}()
	defer func() {
		dst.Close()
		<-recvDone
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := src.Send(dst.SelfPublicKey(), []byte("mesh?")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-got:
			return
		case <-ctx.Done():
			t.Fatalf("no mesh from %s to %s: %v", from, to, ctx.Err())
		case <-tick.C:
		}
	}
}
