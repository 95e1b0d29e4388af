package main

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/key"
)

var clientsNow = time.Unix(1_800_000_000, 0)

// fakeConns returns n snapshots with varied keys, addresses, ages,
// counters and app names; some share keys, addresses and counter values
// so that ties occur.
func fakeConns(n int) []derp.ConnSnapshot {
	keys := make([]key.NodePublic, (n+2)/3)
	for i := range keys {
		keys[i] = key.NewNode().Public()
	}
	out := make([]derp.ConnSnapshot, n)
	for i := range out {
		ip := netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", i%5))
		if i%4 == 3 {
			ip = netip.MustParseAddr(fmt.Sprintf("2001:db8::%d", i%3))
		}
		out[i] = derp.ConnSnapshot{
			ConnNum:     int64(i + 1),
			Key:         keys[i%len(keys)],
			RemoteAddr:  netip.AddrPortFrom(ip, uint16(1000+i%2)),
			ConnectedAt: clientsNow.Add(-time.Duration(i%7) * time.Minute),
			Dup:         i%len(keys) != i,
			Version:     2,
			AppName:     []string{"", "a", "b"}[i%3],
			RxBytes:     int64(i % 4 * 100),
			TxBytes:     int64(i % 6),
			RxPackets:   int64(i % 3),
			TxPackets:   int64(i),
		}
	}
	return out
}

func mustQuery(t testing.TB, raw string) *clientsQuery {
	t.Helper()
	v, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatal(err)
	}
	q, err := parseClientsQuery(v, clientsNow)
	if err != nil {
		t.Fatalf("parseClientsQuery(%q): %v", raw, err)
	}
	return q
}

func TestParseClientsQueryErrors(t *testing.T) {
	zero := "nodekey:" + strings.Repeat("0", 64)
	tests := []struct {
		raw, want string
	}{
		{"all&ip=192.0.2.1", "only one of all, ip, cidr, or key may be given"},
		{"cidr=10.0.0.0/8&key=" + key.NewNode().Public().String(), "only one of all, ip, cidr, or key may be given"},
		{"all&sort=x", `bad sort "x"; want key, ip, conn, connected, rx, tx, rxpkts, or txpkts, optionally with a leading -`},
		{"format=xml", `bad format "xml"; want json or html`},
		{"all&limit=0", `bad limit "0"; want a positive integer`},
		{"ip=nope", "bad ip"},
		{"cidr=10.0.0.1", "bad cidr"},
		{"key=" + strings.Repeat("a", 64), "bad key"},
		{"key=" + zero, "the zero key"},
		{"all&sort=conn&after=x", "bad after"},
		{"all&sort=rx&after=-1", "bad after"},
		{"all&sort=ip&after=nope", "bad after"},
		{"all&sort=connected&after=yesterday", "bad after"},
		{"all&sort=rx&after=1&afterconn=x", "bad afterconn"},
	}
	for _, tt := range tests {
		v, _ := url.ParseQuery(tt.raw)
		_, err := parseClientsQuery(v, clientsNow)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v; want %q", tt.raw, err, tt.want)
		}
	}
}

func TestParseClientsQuery(t *testing.T) {
	tests := []struct {
		raw    string
		filter clientsFilter
		desc   string
		limit  int
	}{
		{"", filterNone, "all clients", 100},
		{"ip=&cidr=&key=", filterNone, "all clients", 100},
		{"all=0", filterAll, "all clients", 100},
		{"app=", filterAll, "all clients with app (none)", 100},
		{"app=x&app=", filterAll, "all clients with app x or (none)", 100},
		{"ip=::ffff:192.0.2.1&limit=5000", filterIP, "clients from 192.0.2.1", 1000},
		{"cidr=192.0.2.77/24&app=a", filterCIDR, "clients from 192.0.2.0/24 with app a", 100},
	}
	for _, tt := range tests {
		q := mustQuery(t, tt.raw)
		if q.filter != tt.filter || q.description() != tt.desc || q.limit != tt.limit {
			t.Errorf("%q: filter %v %q limit %d; want %v %q %d", tt.raw, q.filter, q.description(), q.limit, tt.filter, tt.desc, tt.limit)
		}
	}
	k := key.NewNode().Public()
	if q := mustQuery(t, "key="+k.String()); q.key != k || q.description() != "connections for "+k.String() {
		t.Errorf("key query: %+v", q)
	}
	if q := mustQuery(t, "all&sort=connected&after=30m"); q.after.n != clientsNow.Add(-30*time.Minute).UnixNano() {
		t.Errorf("duration cursor = %d", q.after.n)
	}
}

// Following the next links from the first page visits every matching
// connection exactly once, in order, for every sort and direction.
func TestClientsPaging(t *testing.T) {
	conns := fakeConns(40)
	for _, sort := range clientsSortNames {
		for _, desc := range []bool{false, true} {
			for _, filter := range []string{"all", "cidr=192.0.2.0/24", "app=a&app="} {
				name := sortParam(clientsSort(slices.Index(clientsSortNames[:], sort)), desc)
				t.Run(name+"/"+filter, func(t *testing.T) {
					q := mustQuery(t, filter+"&limit=7&sort="+name)
					var seen []derp.ConnSnapshot
					want := q.run(conns)
					raw := filter + "&limit=7&sort=" + name
					for pages := 0; ; pages++ {
						if pages > 40 {
							t.Fatal("too many pages")
						}
						q := mustQuery(t, raw)
						p := q.run(conns)
						if len(p.rows) > 7 || p.conns != want.conns || p.keys != want.keys {
							t.Fatalf("page %d: %d rows, conns %d keys %d", pages, len(p.rows), p.conns, p.keys)
						}
						seen = append(seen, p.rows...)
						if p.remaining != want.conns-len(seen) {
							t.Fatalf("page %d: remaining %d; want %d", pages, p.remaining, want.conns-len(seen))
						}
						if p.next == "" {
							break
						}
						raw = strings.TrimPrefix(p.next, "?")
					}
					if len(seen) != want.conns {
						t.Fatalf("saw %d connections; want %d", len(seen), want.conns)
					}
					for i := 1; i < len(seen); i++ {
						a, b := q.value(&seen[i-1]), q.value(&seen[i])
						c := q.compare(a, b)
						if desc {
							c = -c
						}
						if c > 0 || (c == 0 && (seen[i-1].ConnNum < seen[i].ConnNum) == desc) {
							t.Fatalf("rows %d and %d out of order", i-1, i)
						}
					}
				})
			}
		}
	}
}

func TestClientsCursorWithoutAfterConn(t *testing.T) {
	conns := fakeConns(20)
	tests := []struct {
		raw  string
		keep func(c derp.ConnSnapshot) bool
	}{
		// Every connection with the cursor's value is skipped.
		{"all&sort=rx&after=100", func(c derp.ConnSnapshot) bool { return c.RxBytes > 100 }},
		{"all&sort=-rx&after=100", func(c derp.ConnSnapshot) bool { return c.RxBytes < 100 }},
		// A bare IP skips all of its ports.
		{"all&sort=ip&after=192.0.2.1", func(c derp.ConnSnapshot) bool {
			return c.RemoteAddr.Addr().Compare(netip.MustParseAddr("192.0.2.1")) > 0
		}},
		{"all&sort=ip&after=192.0.2.1:1000", func(c derp.ConnSnapshot) bool {
			return c.RemoteAddr.Compare(netip.MustParseAddrPort("192.0.2.1:1000")) > 0
		}},
		{"all&sort=conn&after=15&afterconn=3", func(c derp.ConnSnapshot) bool { return c.ConnNum > 15 }},
		{"all&sort=connected&after=3m", func(c derp.ConnSnapshot) bool { return c.ConnectedAt.After(clientsNow.Add(-3 * time.Minute)) }},
	}
	for _, tt := range tests {
		p := mustQuery(t, tt.raw).run(conns)
		n := 0
		for _, c := range conns {
			if tt.keep(c) {
				n++
			}
		}
		if len(p.rows) != n {
			t.Errorf("%q: %d rows; want %d", tt.raw, len(p.rows), n)
		}
		for _, r := range p.rows {
			if !tt.keep(r) {
				t.Errorf("%q: row %d should have been skipped", tt.raw, r.ConnNum)
			}
		}
	}
}

func TestClientsNextURL(t *testing.T) {
	conns := fakeConns(30)
	p := mustQuery(t, "all&format=json&limit=10").run(conns)
	last := p.rows[len(p.rows)-1]
	want := "?after=" + url.QueryEscape(last.Key.String()) + fmt.Sprintf("&afterconn=%d", last.ConnNum) + "&all=1&format=json&limit=10&sort=key"
	if p.next != want {
		t.Errorf("next = %s\nwant %s", p.next, want)
	}
	if p := mustQuery(t, "ip=192.0.2.1&sort=conn&limit=1").run(conns); strings.Contains(p.next, "afterconn") || !strings.Contains(p.next, "ip=192.0.2.1") || strings.Contains(p.next, "format") {
		t.Errorf("conn-sorted next = %s", p.next)
	}
}

func FuzzParseClientsQuery(f *testing.F) {
	f.Add("all&sort=-rx&limit=3&after=5&afterconn=2")
	f.Add("ip=192.0.2.1&sort=ip&after=192.0.2.1")
	f.Add("cidr=2001:db8::/32&app=&app=a&format=json")
	f.Add("all&sort=connected&after=-5m")
	conns := fakeConns(12)
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := parseClientsQuery(v, clientsNow)
		if err != nil {
			return
		}
		if q.limit < 1 || q.limit > maxClientsLimit {
			t.Fatalf("limit %d", q.limit)
		}
		p := q.run(conns)
		if len(p.rows) > q.limit || len(p.rows)+p.remaining > p.conns || p.keys > p.conns {
			t.Fatalf("page: %d rows, %d remaining, %d conns, %d keys", len(p.rows), p.remaining, p.conns, p.keys)
		}
		if p.next != "" {
			v2, err := url.ParseQuery(strings.TrimPrefix(p.next, "?"))
			if err != nil {
				t.Fatalf("next %q: %v", p.next, err)
			}
			if _, err := parseClientsQuery(v2, clientsNow); err != nil {
				t.Fatalf("next %q does not parse: %v", p.next, err)
			}
		}
	})
}
