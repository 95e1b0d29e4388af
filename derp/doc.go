// Package derp implements DERP, the Designated Encrypted Relay for Packets
// protocol (version 2), wire-compatible with Tailscale's relay.
//
// DERP relays opaque, already-encrypted packets between peers that are
// addressed only by their Curve25519 node public keys. A client connects to
// a server over any reliable byte stream, proves its key in a short
// handshake, and then sends packets to other keys; the server forwards them
// to whichever connection currently holds the destination key, or to a
// mesh peer server that does.
//
// # Wire format
//
// After an optional transport prelude (see package derphttp) every message
// is a frame: one type byte, a big-endian uint32 payload length, and the
// payload. The handshake is:
//
//	server → client  ServerKey  (Magic, server public key)
//	client → server  ClientInfo (client public key, NaCl box of JSON)
//	server → client  ServerInfo (NaCl box of JSON)
//
// after which clients send SendPacket and the server replies with
// RecvPacket, KeepAlive, PeerGone and, to mesh watchers, PeerPresent.
// FrameType lists every frame; ReadFrame and WriteFrame are the codec.
//
// # Server and Client
//
// Server accepts connections handed to it by a transport (Server.Accept),
// keeps the map of connected keys, queues packets per destination with a
// bounded head-drop queue, and tracks mesh forwarders and watchers. Client
// speaks the protocol over a connection the caller has already set up; the
// reconnecting, URL-aware client lives in package derphttp.
package derp
