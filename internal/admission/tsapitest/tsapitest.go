// Package tsapitest is a fake of the two Tailscale API endpoints that
// admission by tailnet device list uses: the OAuth token endpoint and the
// device list. Tests run it on loopback.
package tsapitest

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/openderp/openderp/key"
)

// Device is one entry of the fake device list.
type Device struct {
	NodeKey    key.NodePublic
	Authorized bool
	Expires    time.Time // zero: the key does not expire
}

// Server is a fake Tailscale API on loopback.
type Server struct {
	*httptest.Server
	Tailnet      string // the tailnet name requests must use; "-" is accepted too
	ClientID     string
	ClientSecret string

	mu           sync.Mutex
	devices      []Device // guarded by mu
	status       int      // guarded by mu; non-zero: every request answers it
	tokens       map[string]bool
	tokenCalls   int // guarded by mu
	listCalls    int // guarded by mu
	listNotified chan struct{}
}

// NewServer starts a fake API for tailnet, accepting the given client
// credentials. Close it when done.
func NewServer(tailnet, clientID, clientSecret string) *Server {
	s := &Server{
		Tailnet: tailnet, ClientID: clientID, ClientSecret: clientSecret,
		tokens:       map[string]bool{},
		listNotified: make(chan struct{}, 100),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v2/oauth/token", s.token)
	mux.HandleFunc("GET /api/v2/tailnet/{tailnet}/devices", s.list)
	s.Server = httptest.NewServer(s.failing(mux))
	return s
}

// SetDevices replaces the device list.
func (s *Server) SetDevices(d ...Device) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.devices = append([]Device(nil), d...)
}

// SetStatus makes every request answer status (with a JSON error body);
// 0 restores normal service.
func (s *Server) SetStatus(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = status
}

// Calls returns how many token and device-list requests were answered.
func (s *Server) Calls() (token, list int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenCalls, s.listCalls
}

// Listed receives a value after each device-list request answered.
func (s *Server) Listed() <-chan struct{} { return s.listNotified }

func apiError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"message": msg})
}

func (s *Server) failing(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		status := s.status
		s.mu.Unlock()
		if status != 0 {
			apiError(w, status, "failing on purpose")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if r.PostForm.Get("grant_type") != "client_credentials" || id != s.ClientID || secret != s.ClientSecret {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":"invalid_client"}`))
		return
	}
	tok := rand.Text()
	s.mu.Lock()
	s.tokens[tok] = true
	s.tokenCalls++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	valid := ok && s.tokens[tok]
	s.mu.Unlock()
	if !valid {
		apiError(w, http.StatusUnauthorized, "bad token")
		return
	}
	if tn := r.PathValue("tailnet"); tn != s.Tailnet && tn != "-" {
		apiError(w, http.StatusNotFound, "no such tailnet")
		return
	}
	type device struct {
		NodeKey           string `json:"nodeKey"`
		Authorized        bool   `json:"authorized"`
		KeyExpiryDisabled bool   `json:"keyExpiryDisabled"`
		Expires           string `json:"expires"`
		Hostname          string `json:"hostname"`
	}
	s.mu.Lock()
	out := make([]device, 0, len(s.devices))
	for i, d := range s.devices {
		dd := device{NodeKey: d.NodeKey.String(), Authorized: d.Authorized, Hostname: "host" + string(rune('a'+i%26))}
		if d.Expires.IsZero() {
			dd.KeyExpiryDisabled = true
			dd.Expires = "0001-01-01T00:00:00Z"
		} else {
			dd.Expires = d.Expires.UTC().Format(time.RFC3339)
		}
		out = append(out, dd)
	}
	s.listCalls++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"devices": out})
	select {
	case s.listNotified <- struct{}{}:
	default:
	}
}
