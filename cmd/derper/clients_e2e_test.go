package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/key"
)

// dialIdealNode upgrades a connection to /derp with an Ideal-Node header,
// as a region client does when it reached a node other than the first,
// and completes the DERP handshake.
func dialIdealNode(t *testing.T, addr string) *derp.Client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(nc, "GET /derp HTTP/1.1\r\nHost: %s\r\nUpgrade: DERP\r\nConnection: Upgrade\r\nIdeal-Node: 1a\r\n\r\n", addr)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	c, err := derp.NewClient(key.NewNode(), nc, bufio.NewReadWriter(br, bufio.NewWriter(nc)), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Recv(); err != nil { // ServerInfo
		t.Fatal(err)
	}
	nc.SetDeadline(time.Time{})
	return c
}

// startClientsDerper runs derper with three clients: a plain one, one
// with an AppName and one not ideal.
func startClientsDerper(t *testing.T) (base string) {
	t.Helper()
	port := freePort(t, "tcp")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	startDerper(t, nil, "-a", addr, "-c", filepath.Join(t.TempDir(), "c.json"), "-stun=false")
	base = "http://" + addr
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, app := range []string{"", "app one"} {
		c, err := derphttp.NewClient(key.NewNode(), base+"/derp", t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.AppName = app
		if err := c.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	dialIdealNode(t, addr)
	return base
}

func TestE2EClientsPage(t *testing.T) {
	base := startClientsDerper(t)
	hc := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if resp, _ := httpGet(t, hc, base+"/debug/clients"); resp.StatusCode/100 != 3 || resp.Header.Get("Location") != "/debug/clients/" {
		t.Errorf("/debug/clients: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, body := httpGet(t, hc, base+"/debug/"); !strings.Contains(body, "/debug/clients/") {
		t.Error("debug index lacks the clients page")
	}
	resp, body := httpGet(t, hc, base+"/debug/clients/?all&format=json")
	var page struct {
		Conns   int
		Clients []struct {
			AppName  string
			NotIdeal bool
			Version  int
			Remote   string
		}
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("JSON page: %v %q", err, body)
	}
	apps, notIdeal := 0, 0
	for _, c := range page.Clients {
		if c.AppName == "app one" {
			apps++
		}
		if c.NotIdeal {
			notIdeal++
		}
		if c.Version != 2 || !strings.HasPrefix(c.Remote, "127.0.0.1:") {
			t.Errorf("client %+v", c)
		}
	}
	if page.Conns != 3 || apps != 1 || notIdeal != 1 {
		t.Errorf("page: %+v", page)
	}
	if _, body := httpGet(t, hc, base+"/debug/clients/?app=app+one&format=json"); !strings.Contains(body, `"conns": 1,`) || !strings.Contains(body, `"query": "all clients with app app one"`) {
		t.Errorf("app filter:\n%s", body)
	}
	if resp, body := httpGet(t, hc, base+"/debug/clients/?all&key=x"); resp.StatusCode != 400 || body != "only one of all, ip, cidr, or key may be given\n" {
		t.Errorf("two filters: %d %q", resp.StatusCode, body)
	}
	if _, v := httpGet(t, hc, base+"/debug/varz"); varzValue(v, "derp_current_notideal_connections") != 1 {
		t.Errorf("notideal gauge:\n%s", v)
	}
}

// chromiumPath returns a Chromium binary, installing it through
// scripts/chromium.sh if needed, or skips the test.
func chromiumPath(t *testing.T) string {
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

// renderDOM loads url in headless Chromium and returns the DOM.
func renderDOM(t *testing.T, browser, url string) string {
	t.Helper()
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

func TestClientsPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	browser := chromiumPath(t)
	base := startClientsDerper(t)
	rowRE := regexp.MustCompile(`<tr class="client" data-conn="(\d+)">`)
	nextRE := regexp.MustCompile(`<a class="next" href="([^"]+)">Next page</a> \((\d+) more\)`)

	dom := renderDOM(t, browser, base+"/debug/clients/?all=1&limit=2&sort=conn")
	for _, want := range []string{
		"<title>DERP clients: all clients</title>",
		"Showing 2 of 3 matching connections (3 node keys)",
		`conn#</a> ▲`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("page 1 lacks %q", want)
		}
	}
	rows := rowRE.FindAllStringSubmatch(dom, -1)
	next := nextRE.FindAllStringSubmatch(dom, -1)
	if len(rows) != 2 || len(next) != 2 || next[0][2] != "1" {
		t.Fatalf("page 1: %d rows, next links %v\n%s", len(rows), next, dom)
	}
	dom2 := renderDOM(t, browser, base+"/debug/clients/"+html.UnescapeString(next[0][1]))
	rows2 := rowRE.FindAllStringSubmatch(dom2, -1)
	if len(rows2) != 1 || rows2[0][1] <= rows[1][1] || nextRE.MatchString(dom2) || !strings.Contains(dom2, "<td>notideal</td>") {
		t.Errorf("page 2: rows %v after %v\n%s", rows2, rows, dom2)
	}
	// The index's forms and a re-sorted page.
	if idx := renderDOM(t, browser, base+"/debug/clients/"); !strings.Contains(idx, "3 connections (3 node keys)") || strings.Count(idx, "<form") != 5 {
		t.Errorf("index:\n%s", idx)
	}
	sortRE := regexp.MustCompile(`<a class="sort" href="([^"]+)">rx bytes</a>`)
	m := sortRE.FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no rx bytes header link\n%s", dom)
	}
	if d := renderDOM(t, browser, base+"/debug/clients/"+html.UnescapeString(m[1])); !strings.Contains(d, "rx bytes</a> ▼") {
		t.Errorf("rx bytes column does not open descending\n%s", d)
	}
}
