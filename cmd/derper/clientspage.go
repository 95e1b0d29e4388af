package main

import (
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/internal/debugweb"
	"github.com/openderp/openderp/key"
)

// addClientsPage registers /debug/clients/, a searchable, sortable and
// paged list of the client connections, in HTML or JSON. The mux
// redirects /debug/clients to it.
func addClientsPage(d *debugweb.Debugger, s *derp.Server) {
	d.Handle("clients/", "Clients", clientsHandler(s.ConnSnapshots, time.Now))
}

// clientsHandler serves the page from the snapshots snap returns.
func clientsHandler(snap func() []derp.ConnSnapshot, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := now()
		q, err := parseClientsQuery(r.URL.Query(), t)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		all := snap()
		if q.filter == filterNone {
			serveClientsIndex(w, q, all)
			return
		}
		p := q.run(all)
		if q.json {
			writeJSON(w, clientsJSON(q, &p, t))
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		clientsTmpl.Execute(w, newClientsView(q, &p, t))
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}

func countKeys(all []derp.ConnSnapshot) int {
	keys := make(map[key.NodePublic]bool, len(all))
	for i := range all {
		keys[all[i].Key] = true
	}
	return len(keys)
}

func serveClientsIndex(w http.ResponseWriter, q *clientsQuery, all []derp.ConnSnapshot) {
	keys := countKeys(all)
	if q.json {
		writeJSON(w, struct {
			Conns int `json:"conns"`
			Keys  int `json:"keys"`
		}{len(all), keys})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	clientsIndexTmpl.Execute(w, struct{ Conns, Keys int }{len(all), keys})
}

// clientJSON is one row of the JSON page; the field order is the
// reference's.
type clientJSON struct {
	ConnNum     int64  `json:"connNum"`
	Key         string `json:"key"`
	Remote      string `json:"remote"`
	ConnectedAt string `json:"connectedAt"`
	Connected   int64  `json:"connected"`
	Active      bool   `json:"active"`
	Dup         bool   `json:"dup"`
	Disabled    bool   `json:"disabled"`
	Home        bool   `json:"home"`
	MeshPeer    bool   `json:"meshPeer"`
	NotIdeal    bool   `json:"notIdeal"`
	Prober      bool   `json:"prober"`
	Version     int    `json:"version"`
	AppName     string `json:"appName"`
	RxPkts      int64  `json:"rxPkts"`
	RxBytes     int64  `json:"rxBytes"`
	TxPkts      int64  `json:"txPkts"`
	TxBytes     int64  `json:"txBytes"`
	Senders     int64  `json:"senders"`
}

type clientsPageJSON struct {
	Query     string       `json:"query"`
	Conns     int          `json:"conns"`
	Keys      int          `json:"keys"`
	Remaining int          `json:"remaining"`
	Next      string       `json:"next,omitempty"`
	Clients   []clientJSON `json:"clients"`
}

func remoteString(c *derp.ConnSnapshot) string {
	if !c.RemoteAddr.IsValid() {
		return ""
	}
	return c.RemoteAddr.String()
}

func clientsJSON(q *clientsQuery, p *clientsPage, now time.Time) clientsPageJSON {
	out := clientsPageJSON{Query: q.description(), Conns: p.conns, Keys: p.keys, Remaining: p.remaining, Next: p.next, Clients: []clientJSON{}}
	for i := range p.rows {
		c := &p.rows[i]
		out.Clients = append(out.Clients, clientJSON{
			ConnNum:     c.ConnNum,
			Key:         c.Key.String(),
			Remote:      remoteString(c),
			ConnectedAt: c.ConnectedAt.Format(time.RFC3339Nano),
			Connected:   int64(now.Sub(c.ConnectedAt).Round(time.Second)),
			Active:      c.Active,
			Dup:         c.Dup,
			Disabled:    c.Disabled,
			Home:        c.Home,
			MeshPeer:    c.MeshPeer,
			NotIdeal:    c.NotIdeal,
			Prober:      c.Prober,
			Version:     c.Version,
			AppName:     c.AppName,
			RxPkts:      c.RxPackets,
			RxBytes:     c.RxBytes,
			TxPkts:      c.TxPackets,
			TxBytes:     c.TxBytes,
			Senders:     c.Senders,
		})
	}
	return out
}

// flagsText is the flags cell: home, mesh, prober, notideal and dup with
// -active and -disabled suffixes.
func flagsText(c *derp.ConnSnapshot) string {
	var f []string
	if c.Home {
		f = append(f, "home")
	}
	if c.MeshPeer {
		f = append(f, "mesh")
	}
	if c.Prober {
		f = append(f, "prober")
	}
	if c.NotIdeal {
		f = append(f, "notideal")
	}
	if c.Dup {
		d := "dup"
		if c.Active {
			d += "-active"
		}
		if c.Disabled {
			d += "-disabled"
		}
		f = append(f, d)
	}
	return strings.Join(f, " ")
}

// clientsView is what the HTML template shows.
type clientsView struct {
	Query     string
	Shown     int
	Conns     int
	Keys      int
	Remaining int
	Next      string
	Headers   []headerView
	Rows      []rowView
}

type headerView struct {
	Title string
	Link  string // "" for columns that do not sort
	Arrow string // ▲ or ▼ on the current sort column
}

type rowView struct {
	ConnNum                  int64
	Key, KeyLink             string
	Remote, IPLink           string
	Connected                string
	Flags                    string
	Version                  int
	App, AppLink             string
	RxPkts, RxBytes          int64
	TxPkts, TxBytes, Senders int64
}

func newClientsView(q *clientsQuery, p *clientsPage, now time.Time) *clientsView {
	v := &clientsView{Query: q.description(), Shown: len(p.rows), Conns: p.conns, Keys: p.keys, Remaining: p.remaining, Next: p.next}
	cols := []struct {
		title string
		sort  clientsSort
		ok    bool
	}{
		{"conn#", sortConn, true}, {"node key", sortKey, true}, {"remote", sortIP, true},
		{"connected", sortConnected, true}, {"flags", 0, false}, {"ver", 0, false}, {"app", 0, false},
		{"rx pkts", sortRxPkts, true}, {"rx bytes", sortRx, true}, {"tx pkts", sortTxPkts, true},
		{"tx bytes", sortTx, true}, {"senders", 0, false},
	}
	for _, c := range cols {
		h := headerView{Title: c.title}
		if c.ok {
			h.Link = q.sortURL(c.sort)
			if c.sort == q.sort {
				h.Arrow = "▲"
				if q.desc {
					h.Arrow = "▼"
				}
			}
		}
		v.Headers = append(v.Headers, h)
	}
	for i := range p.rows {
		c := &p.rows[i]
		r := rowView{
			ConnNum:   c.ConnNum,
			Key:       c.Key.String(),
			KeyLink:   "?key=" + c.Key.String(),
			Remote:    remoteString(c),
			Connected: now.Sub(c.ConnectedAt).Round(time.Second).String(),
			Flags:     flagsText(c),
			Version:   c.Version,
			App:       c.AppName,
			AppLink:   "?app=" + url.QueryEscape(c.AppName),
			RxPkts:    c.RxPackets, RxBytes: c.RxBytes,
			TxPkts: c.TxPackets, TxBytes: c.TxBytes, Senders: c.Senders,
		}
		if c.RemoteAddr.IsValid() {
			r.IPLink = "?ip=" + c.RemoteAddr.Addr().Unmap().String()
		}
		v.Rows = append(v.Rows, r)
	}
	return v
}

var clientsTmpl = template.Must(template.New("clients").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>DERP clients: {{.Query}}</title>
<style>table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;font-family:monospace}td.n{text-align:right}</style>
</head><body>
<h1>DERP clients: {{.Query}}</h1>
<p><a id="index" href="./">All searches</a></p>
<p id="summary">Showing {{.Shown}} of {{.Conns}} matching connections ({{.Keys}} node keys){{if .Next}}. <a class="next" href="{{.Next}}">Next page</a> ({{.Remaining}} more){{end}}</p>
<table id="clients">
<thead><tr>{{range .Headers}}<th>{{if .Link}}<a class="sort" href="{{.Link}}">{{.Title}}</a>{{if .Arrow}} {{.Arrow}}{{end}}{{else}}{{.Title}}{{end}}</th>{{end}}</tr></thead>
<tbody>
{{range .Rows}}<tr class="client" data-conn="{{.ConnNum}}"><td class="n">{{.ConnNum}}</td><td><a href="{{.KeyLink}}">{{.Key}}</a></td><td>{{if .IPLink}}<a href="{{.IPLink}}">{{.Remote}}</a>{{end}}</td><td>{{.Connected}}</td><td>{{.Flags}}</td><td class="n">{{.Version}}</td><td><a href="{{.AppLink}}">{{.App}}</a></td><td class="n">{{.RxPkts}}</td><td class="n">{{.RxBytes}}</td><td class="n">{{.TxPkts}}</td><td class="n">{{.TxBytes}}</td><td class="n">{{.Senders}}</td></tr>
{{end}}</tbody></table>
{{if .Next}}<p><a class="next" href="{{.Next}}">Next page</a> ({{.Remaining}} more)</p>{{end}}
</body></html>
`))

var clientsIndexTmpl = template.Must(template.New("index").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>DERP clients</title></head><body>
<h1>DERP clients</h1>
<p id="count">{{.Conns}} connections ({{.Keys}} node keys)</p>
<form action="./" method="GET"><input type="hidden" name="all" value="1"><button type="submit">List all</button></form>
<form action="./" method="GET"><label>IP <input name="ip" placeholder="192.0.2.1"></label> <button type="submit">Search</button></form>
<form action="./" method="GET"><label>CIDR <input name="cidr" placeholder="192.0.2.0/24"></label> <button type="submit">Search</button></form>
<form action="./" method="GET"><label>Node key <input name="key" size="72" placeholder="nodekey:…"></label> <button type="submit">Search</button></form>
<form action="./" method="GET"><label>App name <input name="app"></label> <button type="submit">Search</button></form>
</body></html>
`))
