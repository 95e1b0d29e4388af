package derphttp_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/key"
)

// A non-empty Ideal-Node header on the upgrade request marks the
// connection not ideal; an empty one or none does not.
func TestIdealNodeHeader(t *testing.T) {
	s := derp.NewServer(key.NewNode(), t.Logf)
	defer s.Close()
	srv := httptest.NewServer(derphttp.Handler(s))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	tests := []struct {
		name   string
		header string // the whole header line, or ""
		want   bool
	}{
		{"no header", "", false},
		{"empty value", "Ideal-Node: \r\n", false},
		{"named node", "Ideal-Node: 1a\r\n", true},
		{"lower-case name", "ideal-node: x\r\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(nc, "GET /derp HTTP/1.1\r\nHost: x\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n%s\r\n", tt.header)
			br := bufio.NewReader(nc)
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("upgrade: %v %v", resp, err)
			}
			c, err := derp.NewClient(key.NewNode(), nc, bufio.NewReadWriter(br, bufio.NewWriter(nc)), nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Recv(); err != nil {
				t.Fatal(err)
			}
			var found bool
			for _, cs := range s.ConnSnapshots() {
				if cs.Key == c.PublicKey() {
					found = true
					if cs.NotIdeal != tt.want {
						t.Errorf("NotIdeal = %v; want %v", cs.NotIdeal, tt.want)
					}
				}
			}
			if !found {
				t.Fatal("connection not in the snapshot")
			}
		})
	}
}
