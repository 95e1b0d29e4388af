// Package derphttp carries DERP over HTTP: the server-side handlers that
// turn an HTTP request into a DERP connection, and a Client that dials a
// DERP server (or a region of them) and keeps one connection up.
//
// # Server
//
// Handler upgrades a request to /derp into a raw DERP byte stream, either
// after a "101 Switching Protocols" reply or, when the client asks for a
// fast start, immediately. WebSocketHandler wraps it to also accept DERP
// inside WebSocket binary messages. ProbeHandler and ServeNoContent serve
// the latency and captive-portal endpoints a relay exposes next to /derp.
//
// An HTTPS front end should append the server's meta certificate
// (derp.Server.MetaCert) to its certificate chain, for instance with
// GetCertificateWithMetaCert, so that TLS 1.3 clients learn the server key
// during the TLS handshake and save a round trip.
//
// # Client
//
// NewClient connects to one server URL; NewRegionClient to the first
// usable node of a DERP region, trying the nodes in order. A Client
// connects lazily, on first use, and after a failure forgets the broken
// connection so that the next call reconnects. It never retries on its
// own; RunWatchConnectionLoop does, for mesh peers following another
// server's clients.
package derphttp
