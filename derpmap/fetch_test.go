package derpmap

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestFetch(t *testing.T) {
	golden, err := os.ReadFile("testdata/derpmap.json")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/map.json", func(w http.ResponseWriter, r *http.Request) { w.Write(golden) })
	mux.HandleFunc("/bad.json", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{") })
	mux.HandleFunc("/gone", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "nope", http.StatusNotFound) })
	hs := httptest.NewServer(mux)
	defer hs.Close()
	tls := httptest.NewTLSServer(mux)
	defer tls.Close()
	abs, err := filepath.Abs("testdata/derpmap.json")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		src     string
		wantErr string
	}{
		{"http", hs.URL + "/map.json", ""},
		{"file", "file://" + abs, ""},
		{"http 404", hs.URL + "/gone", "404"},
		{"http bad json", hs.URL + "/bad.json", "decoding DERP map"},
		{"https untrusted", tls.URL + "/map.json", "certificate"},
		{"missing file", "file://" + abs + ".missing", "reading map"},
		{"remote file", "file://example.com/x.json", "remote host"},
		{"scheme", "ftp://example.com/x", "unsupported source"},
		{"bad url", "http://[::1", "parsing source URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Fetch(context.Background(), tt.src)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Fetch(%q) = %v; want error containing %q", tt.src, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m, testMap()) {
				t.Errorf("Fetch(%q) = %+v; want test map", tt.src, m)
			}
		})
	}
}

func TestFetchCancelled(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer hs.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Fetch(ctx, hs.URL); !errors.Is(err, context.Canceled) {
		t.Fatalf("Fetch with cancelled ctx = %v; want context.Canceled", err)
	}
}

func TestFetchLocal(t *testing.T) {
	if _, err := fetchLocal(context.Background(), filepath.Join(t.TempDir(), "none.sock")); !errors.Is(err, ErrNoTailscaled) {
		t.Fatalf("fetchLocal(missing) = %v; want ErrNoTailscaled", err)
	}

	golden, err := os.ReadFile("testdata/derpmap.json")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "ts.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Skipf("unix sockets unavailable: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/localapi/v0/derpmap" || r.Host != "local-tailscaled.sock" {
			http.NotFound(w, r)
			return
		}
		w.Write(golden)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	m, err := fetchLocal(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, testMap()) {
		t.Errorf("fetchLocal = %+v; want test map", m)
	}
}
