package derphttp

import (
	"net"
	"net/http"
	"strings"

	"github.com/openderp/openderp/derp"
)

// Header names and values of the upgrade exchange.
const (
	// FastStartHeader, set to "1" by a client that already knows the
	// server's key, asks the server to skip its 101 reply and start DERP
	// right away.
	FastStartHeader = "Derp-Fast-Start"

	// IdealNodeHeader carries the name of the region's first node when
	// a region client connected to another one.
	IdealNodeHeader = "Ideal-Node"

	upgradeProto = "DERP"
)

// Handler returns the handler for the /derp endpoint. It answers requests
// for /derp/probe and /derp/latency-check like ProbeHandler, refuses
// requests that do not ask to upgrade, hijacks the connection and serves
// DERP on it with s.AcceptBackground, returning at once.
func Handler(s *derp.Server) http.Handler {
	return LoggingHandler(s, nil)
}

// LoggingHandler is like Handler but reports odd requests and hijack
// failures to logf.
func LoggingHandler(s *derp.Server, logf derp.Logf) http.Handler {
	return &handler{s: s, logf: logf}
}

type handler struct {
	s    *derp.Server // set once
	logf derp.Logf    // set once
}

func (h *handler) printf(format string, args ...any) {
	if h.logf != nil {
		h.logf(format, args...)
	}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/derp/probe", "/derp/latency-check":
		ProbeHandler(w, r)
		return
	}

	// Neither the method nor the Connection header is checked, and a bare
	// "Upgrade: websocket" is taken as raw DERP: very old clients sent
	// that while speaking DERP framing. Real WebSocket requests are
	// picked off earlier by WebSocketHandler.
	up := r.Header.Get("Upgrade")
	switch strings.ToLower(up) {
	case "websocket", "derp":
	default:
		if up != "" {
			h.printf("derphttp: refused /derp request with unsupported Upgrade header %q", up)
		}
		http.Error(w, "this URL is for DERP clients: it needs an \"Upgrade: DERP\" or WebSocket request", http.StatusUpgradeRequired)
		return
	}

	fastStart := r.Header.Get(FastStartHeader) == "1"

	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// HTTP/2 and other non-hijackable transports land here.
		h.printf("derphttp: hijack of %s failed: %v", r.RemoteAddr, err)
		http.Error(w, "cannot take over this connection for DERP (HTTP/2, or a proxy in between); connect with HTTP/1.1", http.StatusInternalServerError)
		return
	}

	if !fastStart {
		pub := h.s.PublicKey()
		// Exactly the reply the reference sends; clients only look at
		// the status, but probes and proxies may look further. It stays
		// in brw's buffer: the server's handshake flushes it together
		// with the server key frame that follows it, one write instead
		// of two. The bytes on the wire are the same.
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n" +
			"Upgrade: DERP\r\n" +
			"Connection: Upgrade\r\n" +
			"Derp-Version: 2\r\n" +
			"Derp-Public-Key: " + pub.UntypedHexString() + "\r\n\r\n")
	}

	// The handler returns at once: the connection is served on goroutines
	// of the server's own, so that the HTTP server's goroutine, with its
	// grown stack, request and buffers, does not live as long as the
	// connection. It ends with the client or with s.Close; the request's
	// context is cancelled as soon as the handler returns.
	// A region client that could not reach its region's first node
	// names that node in Ideal-Node; any non-empty value marks the
	// connection not ideal. WebSocket connections never get here.
	opts := derp.ConnOptions{NotIdeal: r.Header.Get(IdealNodeHeader) != ""}
	addr := remoteAddr(nc, r)
	// Over TLS, let the read loop wait for input on the socket, without
	// buffers, rather than inside crypto/tls; see tlsidle.go.
	if ic := tlsIdleConnFor(nc); ic != nil {
		nc = ic
	}
	h.s.AcceptBackground(r.Context(), nc, brw, addr, opts)
}

// remoteAddr returns the client's "ip:port", from the TCP connection when
// it has one.
func remoteAddr(nc net.Conn, r *http.Request) string {
	if a := nc.RemoteAddr(); a != nil {
		return a.String()
	}
	return r.RemoteAddr
}
