package derp

import (
	"context"
	"net/netip"

	"github.com/openderp/openderp/key"
)

// AdmitFunc is an admission check: it reports whether the client holding
// node key k, connecting from src, may use the relay. It returns nil to
// admit the client and an error to refuse it; the error's text becomes the
// reason in the server's log line and RejectedError. src is the zero
// AddrPort when the connection's address is unknown.
//
// The server calls an AdmitFunc from the connection's goroutine after the
// client has proved its key in the handshake, possibly for many
// connections at once, and waits for it; it should answer within a few
// seconds and honour ctx, which ends when the connection or the server
// does.
type AdmitFunc func(ctx context.Context, k key.NodePublic, src netip.AddrPort) error

// AddAdmitFunc adds f to the server's admission checks. A client is
// admitted only if every check admits it: the local tailscaled
// (SetVerifyClient), the admission controller (SetVerifyClientURL), the
// disallowed app names and each added AdmitFunc, in the order added; the
// first refusal ends the connection and later checks are not asked.
// Clients presenting the mesh key are mesh peers and skip every check.
func (s *Server) AddAdmitFunc(f AdmitFunc) {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	s.admitFuncs = append(s.admitFuncs[:len(s.admitFuncs):len(s.admitFuncs)], f)
}
