package main

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/internal/debugweb"
	"github.com/openderp/openderp/key"
)

func TestDerperDebugPages(t *testing.T) {
	s := derp.NewServer(key.NewNode(), nil)
	defer s.Close()
	mux := http.NewServeMux()
	addDebugPages(debugweb.New(mux, "derper", "v", debugweb.Env{}, false), s, "derp.example")
	defer runtime.SetMutexProfileFraction(runtime.SetMutexProfileFraction(-1))

	tests := []struct {
		target string
		hdr    bool
		code   int
		body   string
	}{
		{"/debug/", false, 200, "<b>TLS hostname:</b> derp.example"},
		{"/debug/", false, 200, "<b>Mesh key:</b> false"},
		{"/debug/", false, 200, "/debug/set-mutex-profile-fraction"},
		{"/debug/check", false, 200, "consistency check passed\n"},
		{"/debug/set-mutex-profile-fraction?rate=5", false, 400, "Sec-Debug"},
		{"/debug/set-mutex-profile-fraction", true, 400, "Sec-Debug"},
		{"/debug/set-mutex-profile-fraction?rate=x", true, 400, "rate must be an integer"},
		{"/debug/set-mutex-profile-fraction?rate=5", true, 200, "mutex profile fraction: was "},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", tt.target, nil)
		r.RemoteAddr = "127.0.0.1:1"
		if tt.hdr {
			r.Header.Set("Sec-Debug", "derp")
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, r)
		if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.body) {
			t.Errorf("%s: %d %q, want %d containing %q", tt.target, rec.Code, rec.Body, tt.code, tt.body)
		}
	}
	if got := runtime.SetMutexProfileFraction(-1); got != 5 {
		t.Errorf("mutex fraction = %d, want 5", got)
	}
}
