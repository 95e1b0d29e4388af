package derp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/openderp/openderp/key"
)

// DefaultTailscaledSocket is where tailscaled listens for LocalAPI
// requests on Linux.
const DefaultTailscaledSocket = "/var/run/tailscale/tailscaled.sock"

// admissionTimeout bounds one admission-controller exchange.
const admissionTimeout = 5 * time.Second

// errPeerNotFound is tailscaled's answer for a key outside its netmap.
var errPeerNotFound = errors.New("peer not found")

// verifyClient applies the admission checks to a client that completed
// the handshake. Mesh peers skip them.
func (s *Server) verifyClient(ctx context.Context, clientKey key.NodePublic, info *clientInfo, remoteAddr string) error {
	if s.isMeshKey(info.MeshKey) {
		return nil
	}
	if s.appNameDisallowed(info.AppName) {
		return &RejectedError{Key: clientKey, Reason: fmt.Sprintf("disallowed app name %q", info.AppName)}
	}
	s.cfgMu.RLock()
	verifyLocal, sock := s.verifyClients, s.tailscaledSock
	verifyURL, failOpen := s.verifyClientURL, s.verifyFailOpen
	admitFuncs := s.admitFuncs
	s.cfgMu.RUnlock()

	if verifyLocal {
		err := whoIsNodeKey(ctx, sock, clientKey)
		switch {
		case err == nil:
		case errors.Is(err, errPeerNotFound) && s.isSelfKey(ctx, sock, clientKey):
		case errors.Is(err, errPeerNotFound):
			return &RejectedError{Key: clientKey, Reason: "not authorized: node key not in the tailnet"}
		default:
			return &RejectedError{Key: clientKey, Reason: fmt.Sprintf("cannot check with tailscaled: %v", err)}
		}
	}
	if verifyURL != "" {
		allow, err := askAdmissionController(ctx, verifyURL, clientKey, parseRemoteAddr(remoteAddr))
		switch {
		case err != nil && isTransportError(err) && failOpen:
			s.log(slog.LevelWarn, connLog{addr: remoteAddr, key: clientKey, err: err}, "derp: admission controller unreachable; allowing client %v", clientKey)
		case err != nil:
			return &RejectedError{Key: clientKey, Reason: fmt.Sprintf("admission controller: %v", err)}
		case !allow:
			return &RejectedError{Key: clientKey, Reason: "admission controller denied the client"}
		}
	}
	if len(admitFuncs) > 0 {
		src := parseRemoteAddr(remoteAddr)
		for _, f := range admitFuncs {
			if err := f(ctx, clientKey, src); err != nil {
				return &RejectedError{Key: clientKey, Reason: err.Error()}
			}
		}
	}
	return nil
}

// selfKeyRefetch is how long a stranger's key is compared with the cached
// node key of the local tailscaled before its status is asked again, so
// a flood of strangers costs at most one status call per period.
const selfKeyRefetch = 10 * time.Second

// selfKeyCache remembers the local tailscaled's own node key.
type selfKeyCache struct {
	mu      sync.Mutex
	sock    string         // guarded by mu; the socket key came from
	key     key.NodePublic // guarded by mu
	fetched time.Time      // guarded by mu; zero: never
}

// isSelfKey reports whether k is the node key of the tailscaled on sock
// itself. tailscaled's whois does not know its own key, so without this
// the machine's own tailscaled could not use the relay beside it. A key
// equal to the cached one is admitted at once; another one makes it ask
// tailscaled again once the cache is selfKeyRefetch old, so a changed
// node key is learned within that time.
func (s *Server) isSelfKey(ctx context.Context, sock string, k key.NodePublic) bool {
	c := &s.selfKey
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sock == sock && !c.fetched.IsZero() {
		if c.key == k {
			return true
		}
		if time.Since(c.fetched) < selfKeyRefetch {
			return false
		}
	}
	self, err := selfNodeKey(ctx, sock)
	if err != nil {
		return false
	}
	c.sock, c.key, c.fetched = sock, self, time.Now()
	return self == k
}

// transportError marks failures to reach the admission controller, which
// fail open when so configured; answers it gave never do.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

func isTransportError(err error) bool {
	var te *transportError
	return errors.As(err, &te)
}

// askAdmissionController POSTs the client's key and IP to url and reports
// whether the controller allows it.
func askAdmissionController(ctx context.Context, url string, clientKey key.NodePublic, src netip.AddrPort) (bool, error) {
	srcText := ""
	if src.IsValid() {
		srcText = src.Addr().String()
	}
	body, err := json.Marshal(struct {
		NodePublic key.NodePublic
		Source     string
	}{clientKey, srcText})
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, admissionTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, &transportError{err}
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return false, fmt.Errorf("status %s", res.Status)
	}
	var verdict struct{ Allow bool }
	if err := json.NewDecoder(io.LimitReader(res.Body, 4<<10)).Decode(&verdict); err != nil {
		return false, fmt.Errorf("decoding answer: %w", err)
	}
	return verdict.Allow, nil
}

// localAPIClient returns an HTTP client that talks to tailscaled over its
// unix socket.
func localAPIClient(sock string) *http.Client {
	if sock == "" {
		sock = DefaultTailscaledSocket
	}
	return &http.Client{
		Timeout: admissionTimeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
			DisableKeepAlives: true,
		},
	}
}

// localAPIGet performs a GET against tailscaled's LocalAPI and returns the
// response body of a 200 answer.
func localAPIGet(ctx context.Context, sock, path string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://local-tailscaled.sock"+path, nil)
	if err != nil {
		return nil, 0, err
	}
	res, err := localAPIClient(sock).Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("no tailscaled answering on %s: %w", sockOrDefault(sock), err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, res.StatusCode, err
	}
	return body, res.StatusCode, nil
}

func sockOrDefault(sock string) string {
	if sock == "" {
		return DefaultTailscaledSocket
	}
	return sock
}

// whoIsNodeKey asks tailscaled whether k belongs to a node of its netmap.
func whoIsNodeKey(ctx context.Context, sock string, k key.NodePublic) error {
	body, status, err := localAPIGet(ctx, sock, "/localapi/v0/whois?addr="+url.QueryEscape(k.String()))
	if err != nil {
		return err
	}
	switch status {
	case http.StatusOK:
		return nil
	case http.StatusNotFound:
		return errPeerNotFound
	case http.StatusBadRequest:
		// Daemons too old to look up node keys reject the address.
		return fmt.Errorf("tailscaled too old to look up node keys: %s", bytes.TrimSpace(body))
	default:
		return fmt.Errorf("tailscaled whois: status %d: %s", status, bytes.TrimSpace(body))
	}
}

// selfNodeKey asks tailscaled for its own node key.
func selfNodeKey(ctx context.Context, sock string) (key.NodePublic, error) {
	body, status, err := localAPIGet(ctx, sock, "/localapi/v0/status?peers=false")
	if err != nil {
		return key.NodePublic{}, err
	}
	if status != http.StatusOK {
		return key.NodePublic{}, fmt.Errorf("tailscaled status: status %d", status)
	}
	var st struct {
		Self *struct{ PublicKey key.NodePublic }
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return key.NodePublic{}, fmt.Errorf("decoding tailscaled status: %w", err)
	}
	if st.Self == nil || st.Self.PublicKey.IsZero() {
		return key.NodePublic{}, errors.New("tailscaled status has no node key")
	}
	return st.Self.PublicKey, nil
}
