package derphttp_test

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/internal/bootstrapdns"
)

// fixedResolver answers every host name with one documentation address
// and has no TXT records, so no real DNS is used.
type fixedResolver struct{}

func (fixedResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return []netip.Addr{netip.MustParseAddr("192.0.2.1")}, nil
}

func (fixedResolver) LookupTXT(context.Context, string) ([]string, error) {
	return nil, errors.New("no TXT records")
}

// TestHostileBootstrapDNS is the /bootstrap-dns case of the hostile-input
// suite, served next to /derp as cmd/derper serves it. Random ?q= values
// (valid names, over-long names, arbitrary bytes) are answered 200 or
// 400 exactly as the name rules say, each 400 counted; raw garbage in the
// request line gets a 4xx or a close; the set of remembered names stays
// bounded; a probe pair relays throughout; memory and goroutines return to
// where they were. 1,000 queries by default, 10,000 with
// OPENDERP_HEAVY_TESTS=1 (make hostile).
func TestHostileBootstrapDNS(t *testing.T) {
	n := 1000
	if heavy() {
		n = 10000
	}
	bs := bootstrapdns.New("derp.example", "hidden.example", fixedResolver{}, nil)
	bs.Refresh(t.Context())
	ls := newLimitedServer(t, derphttp.Limits{HandshakeTimeout: 10 * time.Second}, nil,
		func(mux *http.ServeMux) { mux.Handle("/bootstrap-dns", bs) })
	vars := bs.Vars()
	counter := func(name string) int64 {
		v, _ := strconv.ParseInt(vars[name].String(), 10, 64)
		return v
	}
	probes := newProbePair(t, ls.url, nil)
	probes.exchange(t)
	mem0, g0 := memUse()
	base := "http://" + ls.addr() + "/bootstrap-dns?q="
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()

	rng := rand.New(rand.NewPCG(3, 4))
	var bad, maxQueried int64
	for i := range n {
		q := hostileQuery(rng)
		resp, err := hc.Get(base + url.QueryEscape(q))
		if err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		want := http.StatusOK
		if !looksLikeHostName(q) {
			want = http.StatusBadRequest
			bad++
		}
		if resp.StatusCode != want {
			t.Fatalf("q=%.40q (%d bytes): status %d, want %d", q, len(q), resp.StatusCode, want)
		}
		maxQueried = max(maxQueried, counter("counter_bootstrap_dns_queried_domains"))
		if i%200 == 0 {
			probes.exchange(t)
		}
	}
	if got := counter("counter_bootstrap_dns_bad_queries"); got != bad {
		t.Errorf("counter_bootstrap_dns_bad_queries = %d, want %d", got, bad)
	}
	if got := counter("counter_bootstrap_dns_requests"); got != int64(n) {
		t.Errorf("counter_bootstrap_dns_requests = %d, want %d", got, n)
	}
	if maxQueried > 500 {
		t.Errorf("remembered up to %d queried names, bound 500", maxQueried)
	}

	// Raw garbage where the query should be: net/http refuses what is not
	// a request (400, or 431 past the header limit), and whatever parses
	// reaches the handler, which answers it too. Either way the
	// connection ends.
	for j := range 50 {
		nc := dialFrom(t, "127.0.0.2", ls.addr())
		junk := make([]byte, 1+rng.IntN(24<<10))
		fillRandom(rng, junk)
		go func() {
			io.WriteString(nc, "GET /bootstrap-dns?q=")
			nc.Write(junk)
			nc.(*net.TCPConn).CloseWrite()
		}()
		nc.SetReadDeadline(time.Now().Add(15 * time.Second))
		reply, err := io.ReadAll(nc)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("garbage %d: server kept the connection", j)
		}
		if len(reply) > 0 && !strings.HasPrefix(string(reply), "HTTP/1.1 4") {
			t.Errorf("garbage %d: reply %.40q", j, reply)
		}
		nc.Close()
	}
	probes.exchange(t)
	waitFor(t, "connections gone", func() bool { o, p := ls.ll.Counts(); return o == 2 && p == 0 })
	mem1, g1 := memUse()
	t.Logf("%d random queries (%d refused), 50 garbage requests: memory %+d KiB, goroutines %+d, at most %d names remembered",
		n, bad, (int64(mem1)-int64(mem0))/1024, g1-g0, maxQueried)
	if grow := int64(mem1) - int64(mem0); grow > 4<<20 {
		t.Errorf("memory grew by %d KiB", grow/1024)
	}
	if g1-g0 > 10 {
		t.Errorf("%d goroutines left", g1-g0)
	}
}

// hostileQuery returns a random ?q= value: a plausible host name, one
// over the length limit, or arbitrary bytes.
func hostileQuery(rng *rand.Rand) string {
	const nameBytes = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."
	name := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = nameBytes[rng.IntN(len(nameBytes))]
		}
		return string(b)
	}
	switch rng.IntN(5) {
	case 0:
		return ""
	case 1, 2: // up to the limit
		return name(1 + rng.IntN(254))
	case 3: // over it
		return name(255 + rng.IntN(1800))
	default: // anything
		b := make([]byte, 1+rng.IntN(300))
		fillRandom(rng, b)
		return string(b)
	}
}

// looksLikeHostName is the test's own statement of the rule the handler
// enforces: at most 254 bytes of letters, digits, '-', '_' and '.'.
func looksLikeHostName(q string) bool {
	if len(q) > 254 {
		return false
	}
	for _, c := range []byte(q) {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}
