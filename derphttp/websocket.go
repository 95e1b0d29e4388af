package derphttp

import (
	"bufio"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/coder/websocket"

	"github.com/openderp/openderp/derp"
)

// See docs/compat.md#ws-accepts.
//
// webSocketAccepts counts WebSocket DERP connections accepted by every
// WebSocketHandler in the process; see WebSocketAccepts.
var webSocketAccepts atomic.Int64

// WebSocketAccepts returns how many WebSocket DERP connections have been
// accepted, the reference's derp_websocket_accepts counter. The daemon
// publishes it; the package publishes nothing itself.
func WebSocketAccepts() int64 { return webSocketAccepts.Load() }

// WebSocketHandler returns a handler that serves DERP over WebSocket to
// requests that ask for it (an "Upgrade: websocket" header and a
// Sec-WebSocket-Protocol mentioning "derp") and passes every other request
// to next, normally Handler(s).
//
// Every DERP write becomes one binary message; reads concatenate binary
// messages, so frames and messages need not line up.
func WebSocketHandler(s *derp.Server, next http.Handler) http.Handler {
	return LoggingWebSocketHandler(s, next, nil)
}

// LoggingWebSocketHandler is like WebSocketHandler but reports failed
// handshakes to logf.
func LoggingWebSocketHandler(s *derp.Server, next http.Handler, logf derp.Logf) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") ||
			!strings.Contains(r.Header.Get("Sec-WebSocket-Protocol"), "derp") {
			next.ServeHTTP(w, r)
			return
		}
		serveWebSocket(s, w, r, logf)
	})
}

func serveWebSocket(s *derp.Server, w http.ResponseWriter, r *http.Request, logf derp.Logf) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols: []string{"derp"},
		// Browsers on any page may reach a relay; DERP authenticates by
		// key, not by origin.
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		// Accept has already answered the request.
		if logf != nil {
			logf("derphttp: websocket.Accept: %v", err)
		}
		return
	}
	// Takes effect only if the DERP side did not close the socket first,
	// which it does with status 1000.
	defer c.Close(websocket.StatusInternalError, "closing")
	if c.Subprotocol() != "derp" {
		c.Close(websocket.StatusPolicyViolation, "client must speak the derp subprotocol")
		return
	}
	webSocketAccepts.Add(1)
	ctx := r.Context()
	nc := websocket.NetConn(ctx, c, websocket.MessageBinary)
	brw := bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc))
	s.Accept(ctx, nc, brw, r.RemoteAddr)
}
