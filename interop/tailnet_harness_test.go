//go:build !race

package interop

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"expvar"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ourderp "github.com/openderp/openderp/derp"
	ourhttp "github.com/openderp/openderp/derphttp"
	ourkey "github.com/openderp/openderp/key"
	"github.com/openderp/openderp/stun/stunserver"
	"tailscale.com/client/tailscale"
	tsderp "tailscale.com/derp"
	tshttp "tailscale.com/derp/derphttp"
	"tailscale.com/ipn/store/mem"
	"tailscale.com/net/netmon"
	"tailscale.com/tailcfg"
	"tailscale.com/tsnet"
	"tailscale.com/tstest/integration/testcontrol"
	tskey "tailscale.com/types/key"

	"github.com/openderp/openderp/internal/loopguard"
)

// tailRelay is a DERP server, ours or the reference's, behind TLS on a
// loopback port, as a tailnet node reaches it.
type tailRelay struct {
	name   string
	port   int
	expvar func() expvar.Var
	close  func()

	srv *http.Server
	tls *tls.Config

	mu sync.Mutex
	ln net.Listener // nil while refusing
	wg sync.WaitGroup
}

// serveRelay serves h over TLS on a new loopback port until the test ends.
func serveRelay(t *testing.T, name string, h http.Handler, metaCert []byte, ev func() expvar.Var, closeServer func()) *tailRelay {
	c, _ := testCert(t)
	mux := http.NewServeMux()
	mux.Handle("/derp", h)
	mux.HandleFunc("/derp/probe", ourhttp.ProbeHandler)
	mux.HandleFunc("/derp/latency-check", ourhttp.ProbeHandler)
	mux.HandleFunc("/generate_204", ourhttp.ServeNoContent)
	r := &tailRelay{
		name:   name,
		expvar: ev,
		srv:    &http.Server{Handler: mux, ErrorLog: log.New(discard{}, "", 0)},
		tls: &tls.Config{
			Certificates: []tls.Certificate{*ourhttp.AppendMetaCert(&c, metaCert)},
			NextProtos:   []string{"http/1.1"},
		},
	}
	r.close = func() {
		r.srv.Close()
		r.wg.Wait()
		closeServer()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.port = ln.Addr().(*net.TCPAddr).Port
	r.serve(ln)
	t.Cleanup(r.close)
	return r
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func (r *tailRelay) serve(ln net.Listener) {
	r.mu.Lock()
	r.ln = ln
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.srv.Serve(tls.NewListener(ln, r.tls))
	}()
}

// refuse closes the listening socket, so that new connections are refused
// while established ones carry on.
func (r *tailRelay) refuse() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln != nil {
		r.ln.Close()
		r.ln = nil
	}
}

// admit listens again on the same port.
func (r *tailRelay) admit(t *testing.T) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)))
	if err != nil {
		t.Fatalf("listening again on %s's port: %v", r.name, err)
	}
	r.serve(ln)
}

func (r *tailRelay) url() string { return fmt.Sprintf("https://127.0.0.1:%d/derp", r.port) }

// counters reads the relay's metrics, which both implementations publish
// under the same names.
func (r *tailRelay) counters(t *testing.T) relayCounters {
	var m struct {
		BytesReceived int64            `json:"bytes_received"`
		BytesSent     int64            `json:"bytes_sent"`
		Dropped       int64            `json:"packets_dropped"`
		Reasons       map[string]int64 `json:"counter_packets_dropped_reason"`
		FwdOut        int64            `json:"packets_forwarded_out"`
		FwdIn         int64            `json:"packets_forwarded_in"`
		Conns         int64            `json:"gauge_current_connections"`
	}
	if err := json.Unmarshal([]byte(r.expvar().String()), &m); err != nil {
		t.Fatalf("reading %s relay's metrics: %v", r.name, err)
	}
	return relayCounters{m.BytesReceived, m.BytesSent, m.Dropped, m.Reasons, m.FwdOut, m.FwdIn, m.Conns}
}

type relayCounters struct {
	bytesReceived, bytesSent, dropped int64
	reasons                           map[string]int64
	fwdOut, fwdIn                     int64
	conns                             int64 // a gauge: sub keeps the later value
}

// sub returns the growth from c0 to c.
func (c relayCounters) sub(c0 relayCounters) relayCounters {
	d := relayCounters{
		bytesReceived: c.bytesReceived - c0.bytesReceived,
		bytesSent:     c.bytesSent - c0.bytesSent,
		dropped:       c.dropped - c0.dropped,
		fwdOut:        c.fwdOut - c0.fwdOut,
		fwdIn:         c.fwdIn - c0.fwdIn,
		conns:         c.conns,
		reasons:       map[string]int64{},
	}
	for k, v := range c.reasons {
		if n := v - c0.reasons[k]; n != 0 {
			d.reasons[k] = n
		}
	}
	return d
}

func (c relayCounters) String() string {
	return fmt.Sprintf("received %d B, sent %d B, dropped %d %v, forwarded out %d in %d packets",
		c.bytesReceived, c.bytesSent, c.dropped, c.reasons, c.fwdOut, c.fwdIn)
}

// startOurRelay starts an openderp derp.Server behind derphttp.Handler,
// which also accepts WebSocket.
func startOurRelay(t *testing.T, mesh string) (*tailRelay, *ourderp.Server) {
	s := ourderp.NewServer(ourkey.NewNode(), nil)
	s.SetMeshKey(mesh)
	h := ourhttp.WebSocketHandler(s, ourhttp.Handler(s))
	return serveRelay(t, "ours", h, s.MetaCert(), s.ExpVar, func() { s.Close() }), s
}

// startTheirRelay starts the reference's derp.Server behind its handler.
func startTheirRelay(t *testing.T, mesh string) (*tailRelay, *tsderp.Server) {
	s := tsderp.NewServer(tskey.NewNode(), func(string, ...any) {})
	s.SetMeshKey(mesh)
	return serveRelay(t, "theirs", tshttp.Handler(s), s.MetaCert(), s.ExpVar, func() { s.Close() }), s
}

// startSTUN runs our STUN server on a loopback UDP port.
func startSTUN(t *testing.T) int {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		stunserver.New(nil).Serve(ctx, pc.(*net.UDPConn))
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// derpRegion is region 1, "oderp", with one node per relay in order.
// With wsHostPort, each node's host name carries its port, which is how
// v1.76.3 builds a WebSocket URL.
func derpRegion(stunPort int, wsHostPort bool, relays ...*tailRelay) *tailcfg.DERPMap {
	reg := &tailcfg.DERPRegion{RegionID: 1, RegionCode: "oderp", RegionName: "openderp test"}
	for i, r := range relays {
		host := "127.0.0.1"
		if wsHostPort {
			host = net.JoinHostPort(host, strconv.Itoa(r.port))
		}
		reg.Nodes = append(reg.Nodes, &tailcfg.DERPNode{
			Name:             fmt.Sprintf("1%c", 'a'+i),
			RegionID:         1,
			HostName:         host,
			IPv4:             "127.0.0.1",
			IPv6:             "none",
			DERPPort:         r.port,
			STUNPort:         stunPort,
			STUNTestIP:       "127.0.0.1",
			InsecureForTests: true,
		})
	}
	// Netcheck's captive portal detection asks at most five endpoints at
	// once, the region's port-80 nodes before controlplane.tailscale.com
	// and login.tailscale.com. Five STUN-only nodes (never dialled for
	// DERP) with port 80 on loopback keep it from looking any further.
	for i := range 5 {
		reg.Nodes = append(reg.Nodes, &tailcfg.DERPNode{
			Name:      fmt.Sprintf("1s%d", i),
			RegionID:  1,
			HostName:  "127.0.0.1",
			IPv4:      "127.0.0.1",
			IPv6:      "none",
			STUNPort:  stunPort,
			STUNOnly:  true,
			CanPort80: true,
		})
	}
	return &tailcfg.DERPMap{Regions: map[int]*tailcfg.DERPRegion{1: reg}}
}

// meshRelays makes our server and theirs one region: each follows the
// other's clients with its own implementation's mesh client.
func meshRelays(t *testing.T, ours *ourderp.Server, ourR *tailRelay, theirs *tsderp.Server, theirR *tailRelay) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup

	ourMesh, err := ourhttp.NewClient(ours.PrivateKey(), theirR.url(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ourMesh.MeshKey = meshKey
	ourMesh.TLSConfig = &tls.Config{RootCAs: sharedPool}
	theirMesh, err := tshttp.NewClient(theirs.PrivateKey(), ourR.url(), func(string, ...any) {}, netmon.NewStatic())
	if err != nil {
		t.Fatal(err)
	}
	theirMesh.MeshKey = meshKey
	theirMesh.TLSConfig = &tls.Config{RootCAs: sharedPool}

	ourReady, theirReady := make(chan struct{}), make(chan struct{})
	wg.Add(2)
	go func() {
		defer wg.Done()
		var once sync.Once
		ourMesh.RunWatchConnectionLoop(ctx, ours.PublicKey(), nil,
			func(m ourderp.PeerPresentMessage) {
				once.Do(func() { close(ourReady) })
				ours.AddPacketForwarder(m.Key, ourMesh)
			},
			func(m ourderp.PeerGoneMessage) { ours.RemovePacketForwarder(m.Peer, ourMesh) })
	}()
	go func() {
		defer wg.Done()
		var once sync.Once
		theirMesh.RunWatchConnectionLoop(ctx, theirs.PublicKey(), func(string, ...any) {},
			func(m tsderp.PeerPresentMessage) {
				once.Do(func() { close(theirReady) })
				theirs.AddPacketForwarder(m.Key, theirMesh)
			},
			func(m tsderp.PeerGoneMessage) { theirs.RemovePacketForwarder(m.Peer, theirMesh) })
	}()
	t.Cleanup(func() {
		cancel()
		ourMesh.Close()
		theirMesh.Close()
		wg.Wait()
	})
	// Each watcher sees the other server's mesh client first.
	for _, c := range []chan struct{}{ourReady, theirReady} {
		select {
		case <-c:
		case <-time.After(20 * time.Second):
			t.Fatal("mesh watchers did not see each other")
		}
	}
}

// startControl serves tailscale's test control server with dm.
func startControl(t *testing.T, dm *tailcfg.DERPMap) string {
	c := &testcontrol.Server{DERPMap: dm, Logf: func(string, ...any) {}}
	c.HTTPTestServer = httptest.NewUnstartedServer(c)
	c.HTTPTestServer.Config.ErrorLog = log.New(discard{}, "", 0)
	c.HTTPTestServer.Start()
	t.Cleanup(c.HTTPTestServer.Close)
	return c.HTTPTestServer.URL
}

// tailNode is a tsnet node of the reference implementation.
type tailNode struct {
	name string
	s    *tsnet.Server
	lc   *tailscale.LocalClient
	ip   netip.Addr
	key  tskey.NodePublic
	log  *nodeLog
}

// startNode brings up an ephemeral tsnet node with in-memory state.
func startNode(t *testing.T, ctx context.Context, controlURL, name string) *tailNode {
	t.Helper()
	nl := &nodeLog{}
	s := &tsnet.Server{
		Dir:        t.TempDir(),
		Hostname:   name,
		Store:      new(mem.Store),
		Ephemeral:  true,
		ControlURL: controlURL,
		Logf:       nl.logf,
		UserLogf:   nl.logf,
	}
	t.Cleanup(func() {
		// The reference's Close can hang in WireGuard's BindClose after a
		// transfer was cut off; a failed test must still end.
		closed := make(chan struct{})
		go func() {
			defer close(closed)
			s.Close()
		}()
		select {
		case <-closed:
		case <-time.After(30 * time.Second):
			t.Errorf("closing node %s took over 30s; left it", name)
		}
		if t.Failed() {
			t.Logf("last log lines of node %s:\n%s", name, nl.tail(60))
		}
	})
	st, err := s.Up(ctx)
	if err != nil {
		t.Fatalf("bringing up node %s: %v", name, err)
	}
	lc, err := s.LocalClient()
	if err != nil {
		t.Fatal(err)
	}
	return &tailNode{name: name, s: s, lc: lc, ip: st.TailscaleIPs[0], key: st.Self.PublicKey, log: nl}
}

// nodeLog keeps a node's log lines and notes the lines that matter.
type nodeLog struct {
	mu         sync.Mutex
	lines      []string
	alwaysDERP bool // magicsock said it opened no UDP socket
}

func (l *nodeLog) logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	if loopguard.LogTriesOutside(line) {
		loopguard.Note("node log: " + line)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if strings.Contains(line, "per TS_DEBUG_ALWAYS_USE_DERP") {
		l.alwaysDERP = true
	}
	if len(l.lines) >= 4000 {
		l.lines = l.lines[1000:]
	}
	l.lines = append(l.lines, line)
}

func (l *nodeLog) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines[max(0, len(l.lines)-n):], "\n")
}

func (l *nodeLog) sawAlwaysDERP() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.alwaysDERP
}
