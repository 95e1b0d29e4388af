package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openderp/openderp/derpmap"
	"github.com/openderp/openderp/prober"
	"github.com/openderp/openderp/prober/probertest"
)

// verifyingRegion starts two meshed nodes that admit only mesh peers.
func verifyingRegion(t *testing.T, ca *probertest.CA) string {
	a := probertest.StartNode(t, probertest.NodeOpts{CA: ca, MeshKey: meshKey, VerifyClients: true})
	b := probertest.StartNode(t, probertest.NodeOpts{CA: ca, MeshKey: meshKey, VerifyClients: true})
	probertest.Mesh(t, ca, meshKey, a, b)
	return probertest.WriteMap(t, &derpmap.Map{Regions: map[int]*derpmap.Region{
		900: probertest.Region(900, "lab", a.MapNode("a", 900), b.MapNode("b", 900)),
		901: probertest.Region(901, "other", probertest.DeadNode(t, "z", 901)),
	}})
}

// TestOnceMeshKeyJSON probes relays that verify clients, once with the
// mesh key and once without, restricted to one region by ID, with
// queuing-delay and bandwidth probes, and reads the -json output.
func TestOnceMeshKeyJSON(t *testing.T) {
	ca := probertest.NewCA(t)
	mapURL := verifyingRegion(t, ca)
	pskFile := filepath.Join(t.TempDir(), "psk")
	if err := os.WriteFile(pskFile, []byte(meshKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		psk     string
		wantBad int
	}{
		{"with key", pskFile, 0},
		{"without key", "", 12}, // 4 mesh, 4 bw, 4 qd; TLS and STUN pass
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, mapURL, ca)
			cfg.once, cfg.jsonOut, cfg.regionCode, cfg.meshPSKFile = true, true, "900", tt.psk
			// Once mode starts all 17 probes at once (34 TLS clients);
			// on a loaded machine under -race connecting alone can take
			// seconds. A probe's budget is 0.8 of its interval, so
			// generous intervals give every probe room without slowing
			// the test: successes end as soon as they are done, and the
			// keyless failures are refusals, not timeouts.
			cfg.interval, cfg.meshInterval, cfg.tlsInterval, cfg.stunInterval = time.Minute, time.Minute, time.Minute, time.Minute
			cfg.bwInterval, cfg.bwSize = time.Minute, 50_000
			cfg.qdRate, cfg.qdTimeout = 20, 10*time.Second
			var stdout bytes.Buffer
			cfg.stdout = &stdout
			var logs syncBuffer
			err := run(t.Context(), cfg, log.New(&logs, "", log.LstdFlags))
			if (tt.wantBad > 0) != errors.Is(err, errProbesFailed) {
				t.Errorf("run = %v", err)
			}
			var names, badLines []string
			bad := 0
			out := stdout.String() // the decoder drains stdout
			dec := json.NewDecoder(strings.NewReader(out))
			for dec.More() {
				var r map[string]any
				if err := dec.Decode(&r); err != nil {
					t.Fatal(err)
				}
				names = append(names, r["name"].(string))
				switch r["result"] {
				case "good":
					if lat, ok := r["latency"].(float64); !ok || lat <= 0 || r["error"] != nil {
						t.Errorf("good line %v", r)
					}
				case "bad":
					bad++
					badLines = append(badLines, fmt.Sprintf("%v: %v", r["name"], r["error"]))
					if r["error"] == "" {
						t.Errorf("bad line without error: %v", r)
					}
				default:
					t.Errorf("line %v", r)
				}
			}
			if bad != tt.wantBad {
				t.Errorf("%d bad probes; want %d\n%s", bad, tt.wantBad, strings.Join(badLines, "\n"))
			}
			slices.Sort(names)
			if len(names) != 1+2*2+4*3 || slices.ContainsFunc(names, func(n string) bool { return strings.Contains(n, "/other/") }) {
				t.Errorf("probes %v", names)
			}
			if strings.Contains(logs.String(), "good: ") {
				t.Errorf("text result lines with -json")
			}
		})
	}
}

func TestBadMeshKeyIsFatal(t *testing.T) {
	ca := probertest.NewCA(t)
	cfg := testConfig(t, "file:///nonexistent.json", ca)
	cfg.once = true
	cfg.meshPSKFile = filepath.Join(t.TempDir(), "psk")
	os.WriteFile(cfg.meshPSKFile, []byte("not a key"), 0o600)
	err := run(t.Context(), cfg, log.New(io.Discard, "", 0))
	if err == nil || !strings.HasPrefix(err.Error(), "failed to get mesh key: invalid mesh key: must be 64-digit hexadecimal number") {
		t.Errorf("run = %v", err)
	}
}

func TestServeHealthzAndProbeAll(t *testing.T) {
	ca := probertest.NewCA(t)
	base := serve(t, testConfig(t, region(t, ca, true), ca), 16)
	for _, tt := range []struct {
		path, xff string
		code      int
		ctype     string
		body      string
	}{
		{"/healthz", "", 200, "text/plain", "ok\n"},
		{"/healthz", "192.0.2.1", 200, "text/plain", "ok\n"}, // no access control
		{"/debug/probe-all", "192.0.2.1", 403, "", "debug pages are not open to this address\n"},
	} {
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
		if res.StatusCode != tt.code || string(body) != tt.body || tt.ctype != "" && res.Header.Get("Content-Type") != tt.ctype {
			t.Errorf("GET %s = %d %s %q", tt.path, res.StatusCode, res.Header.Get("Content-Type"), body)
		}
	}
	for _, tt := range []struct {
		query string
		code  int
		n     int
	}{
		{"", 424, 16},
		{"?exclude=derp/lab/c/tls&exclude=derp/lab/c/udp&exclude=derp/lab/a/c/mesh&exclude=derp/lab/b/c/mesh" +
			"&exclude=derp/lab/c/a/mesh&exclude=derp/lab/c/b/mesh&exclude=derp/lab/c/c/mesh", 200, 9},
	} {
		res, err := http.Get(base + "/debug/probe-all" + tt.query)
		if err != nil {
			t.Fatal(err)
		}
		var all prober.RunAllResult
		err = json.NewDecoder(res.Body).Decode(&all)
		res.Body.Close()
		if err != nil || res.StatusCode != tt.code || len(all.Results) != tt.n || res.Header.Get("Content-Type") != "application/json" {
			t.Errorf("probe-all%s = %d, %d results, %v", tt.query, res.StatusCode, len(all.Results), err)
		}
	}
}

func TestOnceBandwidthOverTUN(t *testing.T) {
	ca := probertest.NewCA(t)
	cfg := testConfig(t, region(t, ca, false), ca)
	cfg.once, cfg.meshInterval, cfg.stunInterval, cfg.tlsInterval = true, 0, 0, 0
	cfg.bwInterval, cfg.bwSize = 10*time.Second, 200_000
	cfg.bwTUNAddr = "198.19.254.10" // 198.18.0.0/15 is reserved for benchmarks
	cfg.tunName = "dpcmdtest"
	var logs syncBuffer
	err := run(t.Context(), cfg, log.New(&logs, "", log.LstdFlags))
	if err != nil && strings.Contains(err.Error(), "TUN device") || err != nil && strings.Contains(err.Error(), "/dev/net/tun") {
		t.Skipf("cannot create a TUN device here (needs Linux, /dev/net/tun and CAP_NET_ADMIN): %v", err)
	}
	if err != nil {
		t.Fatalf("run = %v\n%s", err, logs.String())
	}
	good, bad := results(logs.String())
	if len(good) != 5 || len(bad) != 0 || !strings.Contains(logs.String(), "bandwidth probes use TUN device dpcmdtest") {
		t.Errorf("good %v bad %v\n%s", good, bad, logs.String())
	}
}
