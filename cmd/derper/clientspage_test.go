package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/openderp/openderp/derp"
)

func getClients(t *testing.T, h http.Handler, rawQuery string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/debug/clients/?"+rawQuery, nil))
	return rec
}

func TestClientsPageJSON(t *testing.T) {
	conns := fakeConns(12)
	conns[0].Home, conns[0].NotIdeal, conns[0].Senders = true, true, 4
	h := clientsHandler(func() []derp.ConnSnapshot { return conns }, func() time.Time { return clientsNow })

	rec := getClients(t, h, "all&format=json&sort=conn&limit=2")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s", rec.Code, rec.Header())
	}
	body := rec.Body.String()
	// Top-level keys in order, tab-indented.
	top := regexp.MustCompile(`(?m)^\t"(\w+)":`).FindAllStringSubmatch(body, -1)
	var keys []string
	for _, m := range top {
		keys = append(keys, m[1])
	}
	if got := strings.Join(keys, ","); got != "query,conns,keys,remaining,next,clients" {
		t.Errorf("top-level keys %s", got)
	}
	fields := regexp.MustCompile(`(?m)^\t\t\t"(\w+)":`).FindAllStringSubmatch(body, -1)
	var names []string
	for _, m := range fields[:19] {
		names = append(names, m[1])
	}
	if got, want := strings.Join(names, ","), "connNum,key,remote,connectedAt,connected,active,dup,disabled,home,meshPeer,notIdeal,prober,version,appName,rxPkts,rxBytes,txPkts,txBytes,senders"; got != want {
		t.Errorf("client keys\n got %s\nwant %s", got, want)
	}
	var page struct {
		Query     string
		Conns     int
		Keys      int
		Remaining int
		Next      string
		Clients   []map[string]any
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	if page.Query != "all clients" || page.Conns != 12 || page.Keys != 4 || page.Remaining != 10 || page.Next != "?after=2&all=1&format=json&limit=2&sort=conn" || len(page.Clients) != 2 {
		t.Errorf("page %+v", page)
	}
	c := page.Clients[0]
	if c["connNum"] != 1.0 || c["remote"] != "192.0.2.0:1000" || c["home"] != true || c["notIdeal"] != true || c["senders"] != 4.0 ||
		c["connected"] != 0.0 || c["connectedAt"] != clientsNow.Format(time.RFC3339Nano) {
		t.Errorf("client 0: %v", c)
	}
	if c := page.Clients[1]; c["connected"] != float64(time.Minute) || c["appName"] != "a" {
		t.Errorf("client 1: %v", c)
	}

	// An empty page still has a clients array and no next link.
	rec = getClients(t, h, "ip=198.51.100.1&format=json")
	if !strings.Contains(rec.Body.String(), `"clients": []`) || strings.Contains(rec.Body.String(), `"next"`) {
		t.Errorf("empty page:\n%s", rec.Body.String())
	}

	// Index.
	rec = getClients(t, h, "format=json")
	if got := strings.Join(strings.Fields(rec.Body.String()), ""); got != `{"conns":12,"keys":4}` {
		t.Errorf("index %s", got)
	}
}

func TestClientsPageErrorsAndHTML(t *testing.T) {
	conns := fakeConns(5)
	h := clientsHandler(func() []derp.ConnSnapshot { return conns }, func() time.Time { return clientsNow })
	tests := []struct {
		query string
		code  int
		want  string
	}{
		{"format=yaml", 400, "bad format"},
		{"all&ip=192.0.2.1", 400, "only one of all, ip, cidr, or key may be given\n"},
		{"all&sort=zz", 400, `bad sort "zz"`},
		{"", 200, `<p id="count">5 connections (2 node keys)</p>`},
		{"all", 200, "<title>DERP clients: all clients</title>"},
		{"all&limit=2", 200, "Showing 2 of 5 matching connections (2 node keys)"},
		{"all&sort=-rx", 200, `rx bytes</a> ▼`},
		{"app=", 200, "DERP clients: all clients with app (none)"},
	}
	for _, tt := range tests {
		rec := getClients(t, h, tt.query)
		if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.want) {
			t.Errorf("%q: %d\n%s\nwant %d with %q", tt.query, rec.Code, rec.Body.String(), tt.code, tt.want)
		}
	}
}
