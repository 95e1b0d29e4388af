package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/key"
)

// The /debug/clients/ query: one primary filter (all, ip, cidr or key),
// optional app filters, a sort order, a page size and a cursor.

// clientsFilter is the primary filter of a clients query.
type clientsFilter int

const (
	filterNone clientsFilter = iota // no filter: the index
	filterAll
	filterIP
	filterCIDR
	filterKey
)

// clientsSort is a sort field of the clients page.
type clientsSort int

const (
	sortKey clientsSort = iota
	sortIP
	sortConn
	sortConnected
	sortRx
	sortTx
	sortRxPkts
	sortTxPkts
)

var clientsSortNames = [...]string{
	sortKey: "key", sortIP: "ip", sortConn: "conn", sortConnected: "connected",
	sortRx: "rx", sortTx: "tx", sortRxPkts: "rxpkts", sortTxPkts: "txpkts",
}

func (s clientsSort) String() string { return clientsSortNames[s] }

// isCounter reports whether s sorts by a traffic counter.
func (s clientsSort) isCounter() bool { return s >= sortRx }

const (
	defaultClientsLimit = 100
	maxClientsLimit     = 1000
)

// clientsQuery is a parsed /debug/clients/ query.
type clientsQuery struct {
	filter    clientsFilter
	filterArg string // the ip, cidr or key parameter as given
	ip        netip.Addr
	prefix    netip.Prefix
	key       key.NodePublic
	apps      []string // nil: no app filter

	sort  clientsSort
	desc  bool
	limit int

	hasAfter     bool
	after        sortValue
	hasAfterConn bool
	afterConn    int64

	json bool
}

// sortValue is a row's value of the sort field, or a cursor.
type sortValue struct {
	n       int64 // conn, connected (Unix nanoseconds), counters
	key     key.NodePublic
	addr    netip.AddrPort
	anyPort bool // a cursor naming only an IP: compare addresses only
}

// errBadSort is the message for an unknown sort name.
func errBadSort(v string) error {
	return fmt.Errorf("bad sort %q; want key, ip, conn, connected, rx, tx, rxpkts, or txpkts, optionally with a leading -", v)
}

// parseClientsQuery parses the parameters of a /debug/clients/ request.
// now resolves duration cursors of the connected sort.
func parseClientsQuery(v url.Values, now time.Time) (*clientsQuery, error) {
	q := &clientsQuery{limit: defaultClientsLimit}
	switch f := v.Get("format"); f {
	case "", "html":
	case "json":
		q.json = true
	default:
		return nil, fmt.Errorf("bad format %q; want json or html", f)
	}

	n := 0
	for _, f := range []string{"all", "ip", "cidr", "key"} {
		if v.Get(f) != "" || (f == "all" && v.Has(f)) {
			n++
		}
	}
	if n > 1 {
		return nil, errors.New("only one of all, ip, cidr, or key may be given")
	}
	if v.Has("all") {
		q.filter = filterAll
	}
	if s := v.Get("ip"); s != "" {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("bad ip %q: %w", s, err)
		}
		q.filter, q.filterArg, q.ip = filterIP, s, ip.Unmap()
	}
	if s := v.Get("cidr"); s != "" {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("bad cidr %q: %w", s, err)
		}
		q.filter, q.filterArg, q.prefix = filterCIDR, s, p.Masked()
	}
	if s := v.Get("key"); s != "" {
		k, err := parseNodeKey(s)
		if err != nil {
			return nil, err
		}
		q.filter, q.filterArg, q.key = filterKey, s, k
	}
	if apps, ok := v["app"]; ok {
		q.apps = slices.Clone(apps)
		if q.filter == filterNone {
			q.filter = filterAll
		}
	}

	if s := v.Get("sort"); s != "" {
		name, desc := strings.CutPrefix(s, "-")
		i := slices.Index(clientsSortNames[:], name)
		if i < 0 {
			return nil, errBadSort(s)
		}
		q.sort, q.desc = clientsSort(i), desc
	}
	if s := v.Get("limit"); s != "" {
		l, err := strconv.Atoi(s)
		if err != nil || l < 1 {
			return nil, fmt.Errorf("bad limit %q; want a positive integer", s)
		}
		q.limit = min(l, maxClientsLimit)
	}
	if s := v.Get("after"); s != "" {
		a, err := parseCursor(q.sort, s, now)
		if err != nil {
			return nil, err
		}
		q.hasAfter, q.after = true, a
	}
	if s := v.Get("afterconn"); s != "" {
		c, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad afterconn %q; want a connection number", s)
		}
		q.hasAfterConn, q.afterConn = q.hasAfter && q.sort != sortConn, c
	}
	return q, nil
}

// parseNodeKey parses the typed "nodekey:<hex>" form. The zero key is
// refused: the reference takes it as "no key" and lists everything.
func parseNodeKey(s string) (key.NodePublic, error) {
	if !strings.HasPrefix(s, "nodekey:") {
		return key.NodePublic{}, fmt.Errorf("bad key %q; want nodekey:<64 hex digits>", s)
	}
	var k key.NodePublic
	if err := k.UnmarshalText([]byte(s)); err != nil {
		return key.NodePublic{}, fmt.Errorf("bad key %q: %w", s, err)
	}
	if k.IsZero() {
		return key.NodePublic{}, fmt.Errorf("bad key %q: the zero key", s)
	}
	return k, nil
}

// parseCursor parses an after= value for sort field f.
func parseCursor(f clientsSort, s string, now time.Time) (sortValue, error) {
	switch f {
	case sortKey:
		k, err := parseNodeKey(s)
		return sortValue{key: k}, err
	case sortIP:
		if ap, err := netip.ParseAddrPort(s); err == nil {
			return sortValue{addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}, nil
		}
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return sortValue{}, fmt.Errorf("bad after %q; want ip:port or ip", s)
		}
		return sortValue{addr: netip.AddrPortFrom(ip.Unmap(), 0), anyPort: true}, nil
	case sortConnected:
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return sortValue{n: n}, nil
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return sortValue{}, fmt.Errorf("bad after %q; want Unix nanoseconds or a duration", s)
		}
		return sortValue{n: now.Add(-d).UnixNano()}, nil
	case sortConn:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return sortValue{}, fmt.Errorf("bad after %q; want a connection number", s)
		}
		return sortValue{n: n}, nil
	default:
		n, err := strconv.ParseUint(s, 10, 63)
		if err != nil {
			return sortValue{}, fmt.Errorf("bad after %q; want an unsigned integer", s)
		}
		return sortValue{n: int64(n)}, nil
	}
}

// matches reports whether c passes the filters.
func (q *clientsQuery) matches(c *derp.ConnSnapshot) bool {
	ip := c.RemoteAddr.Addr().Unmap()
	switch q.filter {
	case filterIP:
		if !c.RemoteAddr.IsValid() || ip != q.ip {
			return false
		}
	case filterCIDR:
		if !c.RemoteAddr.IsValid() || !q.prefix.Contains(ip) {
			return false
		}
	case filterKey:
		if c.Key != q.key {
			return false
		}
	}
	return q.apps == nil || slices.Contains(q.apps, c.AppName)
}

// value returns c's value of the sort field.
func (q *clientsQuery) value(c *derp.ConnSnapshot) sortValue {
	switch q.sort {
	case sortKey:
		return sortValue{key: c.Key}
	case sortIP:
		return sortValue{addr: c.RemoteAddr}
	case sortConn:
		return sortValue{n: c.ConnNum}
	case sortConnected:
		return sortValue{n: c.ConnectedAt.UnixNano()}
	case sortRx:
		return sortValue{n: c.RxBytes}
	case sortTx:
		return sortValue{n: c.TxBytes}
	case sortRxPkts:
		return sortValue{n: c.RxPackets}
	default:
		return sortValue{n: c.TxPackets}
	}
}

// compare orders a before b (ascending) for the sort field; a cursor
// with anyPort compares addresses only.
func (q *clientsQuery) compare(a, b sortValue) int {
	switch q.sort {
	case sortKey:
		ka, kb := a.key.Raw32(), b.key.Raw32()
		return bytes.Compare(ka[:], kb[:])
	case sortIP:
		if c := a.addr.Addr().Compare(b.addr.Addr()); c != 0 || a.anyPort || b.anyPort {
			return c
		}
		return compareInt(int64(a.addr.Port()), int64(b.addr.Port()))
	default:
		return compareInt(a.n, b.n)
	}
}

func compareInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// formatValue is the after= text of v for the sort field.
func (q *clientsQuery) formatValue(v sortValue) string {
	switch q.sort {
	case sortKey:
		return v.key.String()
	case sortIP:
		return v.addr.String()
	default:
		return strconv.FormatInt(v.n, 10)
	}
}

// clientsPage is the result of running a query.
type clientsPage struct {
	conns, keys int                 // matching connections and their keys, ignoring the cursor
	rows        []derp.ConnSnapshot // this page
	remaining   int                 // matching connections after this page
	next        string              // relative next-page URL; "" if none
}

// run filters, orders and pages the snapshots.
func (q *clientsQuery) run(all []derp.ConnSnapshot) clientsPage {
	var rows []derp.ConnSnapshot
	keys := map[key.NodePublic]bool{}
	for i := range all {
		if q.matches(&all[i]) {
			rows = append(rows, all[i])
			keys[all[i].Key] = true
		}
	}
	dir := 1
	if q.desc {
		dir = -1
	}
	// order reports the walk order of (value, conn) pairs.
	order := func(va sortValue, ca int64, vb sortValue, cb int64) int {
		if c := q.compare(va, vb); c != 0 {
			return dir * c
		}
		return dir * compareInt(ca, cb)
	}
	slices.SortFunc(rows, func(a, b derp.ConnSnapshot) int {
		return order(q.value(&a), a.ConnNum, q.value(&b), b.ConnNum)
	})
	start := 0
	if q.hasAfter {
		start = len(rows)
		for i := range rows {
			c := q.compare(q.value(&rows[i]), q.after) * dir
			if c > 0 || (c == 0 && q.hasAfterConn && compareInt(rows[i].ConnNum, q.afterConn)*dir > 0) {
				start = i
				break
			}
		}
	}
	end := min(start+q.limit, len(rows))
	p := clientsPage{conns: len(rows), keys: len(keys), rows: rows[start:end], remaining: len(rows) - end}
	if p.remaining > 0 && end > start {
		p.next = q.nextURL(&rows[end-1])
	}
	return p
}

// baseParams returns the filter, app, format and limit parameters that
// every link of the page keeps.
func (q *clientsQuery) baseParams() url.Values {
	v := url.Values{}
	switch q.filter {
	case filterAll:
		v.Set("all", "1")
	case filterIP:
		v.Set("ip", q.filterArg)
	case filterCIDR:
		v.Set("cidr", q.filterArg)
	case filterKey:
		v.Set("key", q.filterArg)
	}
	for _, a := range q.apps {
		v.Add("app", a)
	}
	if q.json {
		v.Set("format", "json")
	}
	if q.limit != defaultClientsLimit {
		v.Set("limit", strconv.Itoa(q.limit))
	}
	return v
}

// sortParam is the sort= text for field f, descending if desc.
func sortParam(f clientsSort, desc bool) string {
	if desc {
		return "-" + f.String()
	}
	return f.String()
}

// nextURL is the link to the page after last.
func (q *clientsQuery) nextURL(last *derp.ConnSnapshot) string {
	v := q.baseParams()
	v.Set("sort", sortParam(q.sort, q.desc))
	v.Set("after", q.formatValue(q.value(last)))
	if q.sort != sortConn {
		v.Set("afterconn", strconv.FormatInt(last.ConnNum, 10))
	}
	return "?" + v.Encode()
}

// sortURL is the link to the first page sorted by f.
func (q *clientsQuery) sortURL(f clientsSort) string {
	desc := f.isCounter()
	if f == q.sort {
		desc = !q.desc
	}
	v := q.baseParams()
	v.Set("sort", sortParam(f, desc))
	return "?" + v.Encode()
}

// description is the query text of the page, e.g. "all clients with app
// a or (none)".
func (q *clientsQuery) description() string {
	var s string
	switch q.filter {
	case filterIP:
		s = "clients from " + q.ip.String()
	case filterCIDR:
		s = "clients from " + q.prefix.String()
	case filterKey:
		s = "connections for " + q.key.String()
	default:
		s = "all clients"
	}
	if q.apps != nil {
		names := make([]string, len(q.apps))
		for i, a := range q.apps {
			if a == "" {
				a = "(none)"
			}
			names[i] = a
		}
		s += " with app " + strings.Join(names, " or ")
	}
	return s
}
