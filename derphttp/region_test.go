package derphttp_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/derpmap"
	"github.com/openderp/openderp/key"
)

// deadPort returns a loopback port with nothing listening.
func deadPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func port(t *testing.T, ts *testServer) int {
	t.Helper()
	_, p, _ := net.SplitHostPort(ts.addr)
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRegionFailover(t *testing.T) {
	ca := newTestCA(t)
	ts := newTestServer(t, serverOpts{tls: ca, metaCert: true})
	region := &derpmap.Region{
		RegionID:   900,
		RegionCode: "test",
		Nodes: []*derpmap.Node{
			{Name: "900s", RegionID: 900, HostName: "derp.test", IPv4: "127.0.0.1", IPv6: "none", STUNOnly: true, DERPPort: port(t, ts)},
			{Name: "900a", RegionID: 900, HostName: "derp.test", IPv4: "127.0.0.1", IPv6: "none", DERPPort: deadPort(t)},
			{Name: "900b", RegionID: 900, HostName: "sni.test", CertName: "derp.test", IPv4: "127.0.0.1", IPv6: "none", DERPPort: port(t, ts)},
		},
	}
	c := derphttp.NewRegionClient(key.NewNode(), t.Logf, func() *derpmap.Region { return region })
	defer c.Close()
	c.TLSConfig = &tls.Config{RootCAs: ca.pool}
	c.SetAddressFamilySelector(func() bool { return true })
	if !strings.Contains(c.String(), "region 900 (test)") {
		t.Errorf("String() = %q", c.String())
	}
	waitServerInfo(t, c)
	h := ts.lastHeader()
	if got := h.Get("Ideal-Node"); got != "900s" {
		t.Errorf("Ideal-Node = %q; want 900s", got)
	}
	if h.Get(derphttp.FastStartHeader) != "1" {
		t.Error("region client did not use fast start")
	}
	if c.ServerPublicKey() != ts.s.PublicKey() {
		t.Error("wrong server key")
	}

	// DialRegionTLS goes through the same node rules.
	tc, node, err := c.DialRegionTLS(context.Background(), region)
	if err != nil {
		t.Fatal(err)
	}
	tc.Close()
	if node.Name != "900b" {
		t.Errorf("DialRegionTLS picked %s; want 900b", node.Name)
	}
}

func TestRegionErrors(t *testing.T) {
	dead := deadPort(t)
	tests := []struct {
		name   string
		region *derpmap.Region
		want   string
	}{
		{"nil region", nil, "DERP region not available"},
		{"no nodes", &derpmap.Region{RegionID: 1, RegionCode: "x"}, "no nodes for region 1 (x)"},
		{"stun only", &derpmap.Region{RegionID: 2, RegionCode: "y", Nodes: []*derpmap.Node{{Name: "a", HostName: "localhost", STUNOnly: true}}}, "no non-STUNOnly nodes for region 2 (y)"},
		{"both disabled", &derpmap.Region{RegionID: 3, Nodes: []*derpmap.Node{{Name: "a", HostName: "localhost", IPv4: "none", IPv6: "none"}}}, "both IPv4 and IPv6 are explicitly disabled"},
		{"wrong family literal", &derpmap.Region{RegionID: 3, Nodes: []*derpmap.Node{{Name: "a", HostName: "localhost", IPv4: "::1", IPv6: "127.0.0.1"}}}, "both IPv4 and IPv6 are explicitly disabled"},
		{"refused", &derpmap.Region{RegionID: 4, Nodes: []*derpmap.Node{{Name: "a", HostName: "localhost", IPv4: "127.0.0.1", IPv6: "::1", DERPPort: dead}}}, "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := derphttp.NewRegionClient(key.NewNode(), t.Logf, func() *derpmap.Region { return tt.region })
			defer c.Close()
			err := c.Connect(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Connect() = %v; want error containing %q", err, tt.want)
			}
		})
	}
}

// connectProxy is a minimal HTTP CONNECT proxy that sends every tunnel to
// one backend, recording the requested targets.
type connectProxy struct {
	ln      net.Listener
	backend string
	mu      sync.Mutex
	targets []string
	auths   []string
}

func newConnectProxy(t *testing.T, backend string) *connectProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &connectProxy{ln: ln, backend: backend}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.serve(nc)
			}()
		}
	}()
	return p
}

func (p *connectProxy) serve(nc net.Conn) {
	defer nc.Close()
	br := bufio.NewReader(nc)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.targets = append(p.targets, req.Host)
	p.auths = append(p.auths, req.Header.Get("Proxy-Authorization"))
	p.mu.Unlock()
	if req.Method != http.MethodConnect {
		io.WriteString(nc, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
		return
	}
	if strings.HasPrefix(req.Host, "forbidden") {
		io.WriteString(nc, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
		return
	}
	be, err := net.Dial("tcp", p.backend)
	if err != nil {
		return
	}
	defer be.Close()
	io.WriteString(nc, "HTTP/1.1 200 Connection established\r\n\r\n")
	done := make(chan struct{}, 2)
	go func() { io.Copy(be, br); be.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(nc, be); done <- struct{}{} }()
	<-done
}

func TestProxyConnect(t *testing.T) {
	ca := newTestCA(t)
	ts := newTestServer(t, serverOpts{tls: ca, metaCert: true})
	proxy := newConnectProxy(t, ts.addr)
	proxyURL := &url.URL{Scheme: "http", Host: proxy.ln.Addr().String(), User: url.UserPassword("u", "p")}
	for _, host := range []string{"derp.test", "forbidden.test"} {
		region := &derpmap.Region{RegionID: 7, RegionCode: "px", Nodes: []*derpmap.Node{
			// DERPPort and the IP fields are ignored through a proxy.
			{Name: "7a", RegionID: 7, HostName: host, IPv4: "192.0.2.1", IPv6: "none", DERPPort: 1234, CertName: "derp.test"},
		}}
		c := derphttp.NewRegionClient(key.NewNode(), t.Logf, func() *derpmap.Region { return region })
		c.TLSConfig = &tls.Config{RootCAs: ca.pool}
		var asked []string
		c.SetProxyFunc(func(u *url.URL) (*url.URL, error) {
			asked = append(asked, u.String())
			return proxyURL, nil
		})
		err := c.Connect(context.Background())
		c.Close()
		if host == "forbidden.test" {
			if err == nil || !strings.Contains(err.Error(), "403") {
				t.Errorf("Connect through refusing proxy = %v; want 403 error", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Connect through proxy: %v", err)
		}
		if len(asked) != 1 || asked[0] != "https://derp.test/" {
			t.Errorf("proxy asked for %v; want [https://derp.test/]", asked)
		}
	}
	proxy.mu.Lock()
	defer proxy.mu.Unlock()
	if len(proxy.targets) != 2 || proxy.targets[0] != "derp.test:443" {
		t.Errorf("CONNECT targets %v; want derp.test:443 first", proxy.targets)
	}
	if proxy.auths[0] != "Basic dTpw" {
		t.Errorf("Proxy-Authorization %q; want Basic dTpw", proxy.auths[0])
	}
}

func TestRegionNodeDialing(t *testing.T) {
	ca := newTestCA(t)
	ts := newTestServer(t, serverOpts{tls: ca})
	p := port(t, ts)
	tests := []struct {
		name       string
		node       derpmap.Node
		preferIPv6 bool
		trustCA    bool
		wantErr    string
	}{
		// The server listens on IPv4 only: IPv6 is refused and IPv4,
		// delayed 200 ms when IPv6 is preferred, wins.
		{name: "both families, v6 preferred", node: derpmap.Node{HostName: "derp.test", IPv4: "127.0.0.1", IPv6: "::1"}, preferIPv6: true, trustCA: true},
		{name: "both families", node: derpmap.Node{HostName: "derp.test", IPv4: "127.0.0.1", IPv6: "::1"}, trustCA: true},
		{name: "v6 only", node: derpmap.Node{HostName: "derp.test", IPv4: "none", IPv6: "::1"}, trustCA: true, wantErr: "dial tcp6"},
		{name: "insecure for tests", node: derpmap.Node{HostName: "derp.test", IPv4: "127.0.0.1", IPv6: "none", InsecureForTests: true}},
		{name: "untrusted", node: derpmap.Node{HostName: "derp.test", IPv4: "127.0.0.1", IPv6: "none"}, wantErr: "TLS handshake"},
		{name: "wrong cert name", node: derpmap.Node{HostName: "derp.test", CertName: "elsewhere.test", IPv4: "127.0.0.1", IPv6: "none"}, trustCA: true, wantErr: "elsewhere.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.node
			n.Name, n.RegionID, n.DERPPort = "n", 5, p
			region := &derpmap.Region{RegionID: 5, RegionCode: "nd", Nodes: []*derpmap.Node{&n}}
			c := derphttp.NewRegionClient(key.NewNode(), t.Logf, func() *derpmap.Region { return region })
			defer c.Close()
			if tt.trustCA {
				c.TLSConfig = &tls.Config{RootCAs: ca.pool}
			}
			c.SetAddressFamilySelector(func() bool { return tt.preferIPv6 })
			err := c.Connect(context.Background())
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Connect: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Connect() = %v; want error containing %q", err, tt.wantErr)
			}
		})
	}
}
