package latest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	tsderp "tailscale.com/derp"
	tshttp "tailscale.com/derp/derphttp"
	"tailscale.com/net/netmon"
	tsprober "tailscale.com/prober"
	"tailscale.com/tailcfg"
	tskey "tailscale.com/types/key"
)

// ipOnlyDerper is our derper binary serving TLS on 127.0.0.1 with no
// domain name and no certificate given: it generates one and logs the
// DERP node that pins it.
type ipOnlyDerper struct {
	port, stunPort int
	node           tailcfg.DERPNode // as logged, HostName and CertName set
}

var pinJSON = regexp.MustCompile(`^  (\{"Name":"custom","RegionID":900,"HostName":"127\.0\.0\.1","CertName":"sha256-raw:[0-9a-f]{64}"\})$`)

func freeLoopbackPort(t *testing.T, network string) int {
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

// startIPOnlyDerper builds cmd/derper of the main module and runs it.
func startIPOnlyDerper(t *testing.T) *ipOnlyDerper {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "derper")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/derper")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building derper: %v\n%s", err, out)
	}
	d := &ipOnlyDerper{port: freeLoopbackPort(t, "tcp"), stunPort: freeLoopbackPort(t, "udp")}
	cmd := exec.Command(bin,
		"-a", fmt.Sprintf("127.0.0.1:%d", d.port), "-c", filepath.Join(dir, "derper.key"),
		"-certmode", "manual", "-hostname", "127.0.0.1", "-certdir", filepath.Join(dir, "certs"),
		"-http-port", "-1", "-stun-port", fmt.Sprint(d.stunPort))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	ready := make(chan string, 1) // the pin JSON, once serving
	var logged strings.Builder
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		pin := ""
		for sc.Scan() {
			line := sc.Text()
			logged.WriteString(line + "\n")
			if m := pinJSON.FindStringSubmatch(line); m != nil {
				pin = m[1]
			}
			if strings.Contains(line, "derper: serving on") && pin != "" {
				ready <- pin
			}
		}
		cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	select {
	case pin := <-ready:
		if err := json.Unmarshal([]byte(pin), &d.node); err != nil {
			t.Fatal(err)
		}
	case <-exited:
		t.Fatalf("derper exited:\n%s", logged.String())
	case <-time.After(20 * time.Second):
		t.Fatal("derper did not log its pin and start serving")
	}
	return d
}

// region returns a one-node region for d, with the logged pin replaced by
// certName if that is not empty.
func (d *ipOnlyDerper) region(certName string) *tailcfg.DERPRegion {
	n := d.node
	n.Name, n.RegionID, n.DERPPort, n.STUNPort = "900a", 900, d.port, d.stunPort
	n.IPv4, n.IPv6 = "127.0.0.1", "none"
	if certName != "" {
		n.CertName = certName
	}
	return &tailcfg.DERPRegion{RegionID: 900, RegionCode: "custom", RegionName: "custom", Nodes: []*tailcfg.DERPNode{&n}}
}

// TestTheirClientsPinnedIPOnlyDerper: two region clients of today's
// reference, given only the DERP node our derper logged (no CA, no
// InsecureForTests), relay a packet through it; a wrong pin is refused;
// and the reference prober's STUN probe of the node is good.
func TestTheirClientsPinnedIPOnlyDerper(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs cmd/derper")
	}
	d := startIPOnlyDerper(t)
	if d.node.InsecureForTests || !strings.HasPrefix(d.node.CertName, "sha256-raw:") {
		t.Fatalf("logged node %+v", d.node)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	client := func(r *tailcfg.DERPRegion) *tshttp.Client {
		c := tshttp.NewRegionClient(tskey.NewNode(), t.Logf, netmon.NewStatic(), func() *tailcfg.DERPRegion { return r })
		t.Cleanup(func() { c.Close() })
		return c
	}
	good := d.region("")
	a, b := client(good), client(good)
	for _, c := range []*tshttp.Client{a, b} {
		if err := c.Connect(ctx); err != nil {
			t.Fatalf("connect with the logged pin: %v", err)
		}
	}
	recvUntil(t, b, func(m tsderp.ReceivedMessage) bool {
		_, ok := m.(tsderp.ServerInfoMessage)
		return ok
	})
	if err := a.Send(b.SelfPublicKey(), []byte("pinned")); err != nil {
		t.Fatal(err)
	}
	recvUntil(t, b, func(m tsderp.ReceivedMessage) bool {
		p, ok := m.(tsderp.ReceivedPacket)
		if ok && (string(p.Data) != "pinned" || p.Source != a.SelfPublicKey()) {
			t.Fatalf("got %q from %v", p.Data, p.Source)
		}
		return ok
	})

	wrong := "sha256-raw:" + strings.Repeat("0", 64)
	if err := client(d.region(wrong)).Connect(ctx); err == nil {
		t.Error("a wrong pin was accepted")
	}
	upper := "sha256-raw:" + strings.ToUpper(strings.TrimPrefix(d.node.CertName, "sha256-raw:"))
	if err := client(d.region(upper)).Connect(ctx); err == nil {
		t.Error("an uppercase pin was accepted (the reference compares exactly)")
	}

	// The reference prober's STUN probe. (Its mesh probe cannot pass
	// for an IP-only node, whatever the server: it wants the TLS server
	// name to equal the host name, and no SNI goes to an IP.)
	mapFile := filepath.Join(t.TempDir(), "derpmap.json")
	pr := d.region("")
	pr.Nodes[0].IPv6 = "" // "none" would still get a udp6 probe aimed at nothing (a reference quirk)
	b2, err := json.Marshal(&tailcfg.DERPMap{Regions: map[int]*tailcfg.DERPRegion{900: pr}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mapFile, b2, 0o600); err != nil {
		t.Fatal(err)
	}
	p := tsprober.New().WithOnce(true)
	dp, err := tsprober.DERP(p, "file://"+mapFile, tsprober.WithSTUNProbing(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	p.Run("derpmap-probe", time.Second, nil, dp.ProbeMap)
	p.Wait()
	found := false
	for name, info := range p.ProbeInfo() {
		if name == "derp/custom/900a/udp" {
			found = true
		}
		if info.Status != tsprober.ProbeStatusSucceeded {
			t.Errorf("probe %s failed: %s", name, info.Error)
		}
	}
	if !found {
		t.Errorf("no STUN probe ran: %v", p.ProbeInfo())
	}
}
