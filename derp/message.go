package derp

import (
	"encoding/binary"
	"math"
	"net/netip"
	"time"

	"github.com/openderp/openderp/key"
)

// ReceivedMessage is a message a Client receives from its server. Its
// dynamic type is one of ReceivedPacket (or *ReceivedPacket from
// Client.RecvInto), PeerGoneMessage, PeerPresentMessage, ServerInfoMessage,
// KeepAliveMessage, PingMessage, PongMessage, HealthMessage or
// ServerRestartingMessage.
type ReceivedMessage interface {
	msg()
}

// ReceivedPacket is a packet relayed to the client.
type ReceivedPacket struct {
	// Source is the sender's public key.
	Source key.NodePublic
	// Data is the packet. It aliases the client's read buffer and is
	// valid only until the next receive call.
	Data []byte
}

func (ReceivedPacket) msg() {}

// PeerGoneReasonType says why a PeerGone frame was sent.
type PeerGoneReasonType byte

const (
	// PeerGoneReasonDisconnected: the peer, which had sent this client
	// packets, has left the server's region.
	PeerGoneReasonDisconnected = PeerGoneReasonType(0x00)
	// PeerGoneReasonNotHere: the server has no route to the peer the
	// client sent a disco message to.
	PeerGoneReasonNotHere = PeerGoneReasonType(0x01)
	// PeerGoneReasonMeshConnBroke is never sent on the wire; the mesh
	// watch loop reports it when its own connection to a peer server
	// breaks.
	PeerGoneReasonMeshConnBroke = PeerGoneReasonType(0xf0)
)

// PeerGoneMessage reports that a peer is gone.
type PeerGoneMessage struct {
	Peer   key.NodePublic
	Reason PeerGoneReasonType
}

func (PeerGoneMessage) msg() {}

// PeerPresentFlags describe a connection announced in PeerPresent.
type PeerPresentFlags uint8

const (
	// PeerPresentIsRegular is set when neither of the other flags is.
	PeerPresentIsRegular PeerPresentFlags = 1 << 0
	// PeerPresentIsMeshPeer is set for connections that presented the
	// server's mesh key.
	PeerPresentIsMeshPeer PeerPresentFlags = 1 << 1
	// PeerPresentIsProber is set for connections that declared IsProber.
	PeerPresentIsProber PeerPresentFlags = 1 << 2
	// PeerPresentNotIdeal is set for connections whose upgrade request
	// named a different ideal node (the Ideal-Node header): the client
	// would rather be connected elsewhere in the region.
	PeerPresentNotIdeal PeerPresentFlags = 1 << 3
)

// PeerPresentMessage announces a connection to a watcher.
type PeerPresentMessage struct {
	Key key.NodePublic
	// IPPort is the peer's address as the server saw it; the zero value
	// when the server did not say or did not know.
	IPPort netip.AddrPort
	// Flags is zero when the server is too old to send flags.
	Flags PeerPresentFlags
	// AppName is the application name the peer declared in its
	// handshake; empty if it declared none, if the server is too old to
	// say, or if the name the server sent is not a valid AppName.
	AppName string
}

func (PeerPresentMessage) msg() {}

// ServerInfoMessage is the server's handshake reply, always the first
// message a client receives.
type ServerInfoMessage struct {
	// TokenBucketBytesPerSecond is the advisory send rate, in bytes per
	// second including framing; zero means unlimited.
	TokenBucketBytesPerSecond int
	// TokenBucketBytesBurst is the advisory burst size in bytes.
	TokenBucketBytesBurst int
}

func (ServerInfoMessage) msg() {}

// KeepAliveMessage is a keep-alive frame; it needs no answer.
type KeepAliveMessage struct{}

func (KeepAliveMessage) msg() {}

// PingMessage is a ping from the server; answer with Client.SendPong.
type PingMessage [8]byte

func (PingMessage) msg() {}

// PongMessage is a reply to a Client.SendPing.
type PongMessage [8]byte

func (PongMessage) msg() {}

// HealthMessage carries the server's description of a problem with the
// connection; an empty Problem means the problem is over.
type HealthMessage struct {
	Problem string
}

func (HealthMessage) msg() {}

// ServerRestartingMessage says the server is restarting; both durations
// are advisory.
type ServerRestartingMessage struct {
	// ReconnectIn is how long to wait before reconnecting.
	ReconnectIn time.Duration
	// TryFor is how long to keep trying to reconnect.
	TryFor time.Duration
}

func (ServerRestartingMessage) msg() {}

// clientInfo is the JSON sealed inside ClientInfo. Field names and order
// are part of the wire format.
type clientInfo struct {
	MeshKey     string `json:"meshKey,omitempty"`
	Version     int    `json:"version,omitempty"`
	CanAckPings bool
	IsProber    bool   `json:",omitempty"`
	AppName     string `json:",omitempty"`
}

// serverInfo is the JSON sealed inside ServerInfo.
type serverInfo struct {
	Version                   int `json:"version,omitempty"`
	TokenBucketBytesPerSecond int `json:",omitempty"`
	TokenBucketBytesBurst     int `json:",omitempty"`
}

// Payload codecs. Each append function appends a frame's payload (not its
// header); each parse function checks a payload's layout and returns its
// fields, aliasing p where it returns bytes.

func appendServerKey(b []byte, pub key.NodePublic) []byte {
	b = append(b, Magic...)
	return pub.AppendTo(b)
}

func parseServerKey(p []byte) (key.NodePublic, error) {
	if len(p) < len(Magic)+KeyLen {
		return key.NodePublic{}, malformed(FrameServerKey, len(p), "too short")
	}
	if string(p[:len(Magic)]) != Magic {
		return key.NodePublic{}, ErrBadMagic
	}
	return key.NodePublicFromBytes(p[len(Magic):]), nil
}

func appendClientInfo(b []byte, pub key.NodePublic, sealed []byte) []byte {
	b = pub.AppendTo(b)
	return append(b, sealed...)
}

func parseClientInfo(p []byte) (pub key.NodePublic, sealed []byte, err error) {
	if len(p) < KeyLen+NonceLen {
		return key.NodePublic{}, nil, malformed(FrameClientInfo, len(p), "short client info")
	}
	return key.NodePublicFromBytes(p), p[KeyLen:], nil
}

func parseSendPacket(p []byte) (dst key.NodePublic, pkt []byte, err error) {
	dst, pktLen, err := parseSendPacketHead(len(p), p)
	if err != nil {
		return key.NodePublic{}, nil, err
	}
	return dst, p[len(p)-pktLen:], nil
}

// parseSendPacketHead checks the length n of a SendPacket payload and
// decodes its fixed part from head, which holds the payload's first
// min(n, KeyLen) bytes or more. It returns the destination and the length
// of the packet that follows. The server's read loop calls it on a peeked
// header, parseSendPacket on a whole payload: both take the same checks.
//
// The length is checked before head is looked at, so a caller may pass a
// nil head for a length it has not read bytes for.
func parseSendPacketHead(n int, head []byte) (dst key.NodePublic, pktLen int, err error) {
	if n < KeyLen {
		return key.NodePublic{}, 0, malformed(FrameSendPacket, n, "shorter than a key")
	}
	if n-KeyLen > MaxPacketSize {
		return key.NodePublic{}, 0, malformed(FrameSendPacket, n, "packet too big")
	}
	if len(head) < KeyLen {
		return key.NodePublic{}, 0, malformed(FrameSendPacket, len(head), "key not read")
	}
	return key.NodePublicFromBytes(head), n - KeyLen, nil
}

func parseRecvPacket(p []byte) (src key.NodePublic, pkt []byte, err error) {
	if len(p) < KeyLen {
		return key.NodePublic{}, nil, malformed(FrameRecvPacket, len(p), "shorter than a key")
	}
	return key.NodePublicFromBytes(p), p[KeyLen:], nil
}

func parseForwardPacket(p []byte) (src, dst key.NodePublic, pkt []byte, err error) {
	src, dst, pktLen, err := parseForwardPacketHead(len(p), p)
	if err != nil {
		return key.NodePublic{}, key.NodePublic{}, nil, err
	}
	return src, dst, p[len(p)-pktLen:], nil
}

// parseForwardPacketHead is parseSendPacketHead for ForwardPacket: head
// holds at least the payload's first min(n, 2*KeyLen) bytes.
func parseForwardPacketHead(n int, head []byte) (src, dst key.NodePublic, pktLen int, err error) {
	if n < 2*KeyLen {
		return key.NodePublic{}, key.NodePublic{}, 0, malformed(FrameForwardPacket, n, "shorter than two keys")
	}
	if n-2*KeyLen > MaxPacketSize {
		return key.NodePublic{}, key.NodePublic{}, 0, malformed(FrameForwardPacket, n, "packet too big")
	}
	if len(head) < 2*KeyLen {
		return key.NodePublic{}, key.NodePublic{}, 0, malformed(FrameForwardPacket, len(head), "keys not read")
	}
	return key.NodePublicFromBytes(head), key.NodePublicFromBytes(head[KeyLen:]), n - 2*KeyLen, nil
}

func appendPeerGone(b []byte, peer key.NodePublic, reason PeerGoneReasonType) []byte {
	b = peer.AppendTo(b)
	return append(b, byte(reason))
}

// parsePeerGone accepts the 32-byte form of older servers as
// PeerGoneReasonDisconnected.
func parsePeerGone(p []byte) (PeerGoneMessage, error) {
	if len(p) < KeyLen {
		return PeerGoneMessage{}, malformed(FramePeerGone, len(p), "shorter than a key")
	}
	m := PeerGoneMessage{Peer: key.NodePublicFromBytes(p)}
	if len(p) > KeyLen {
		m.Reason = PeerGoneReasonType(p[KeyLen])
	}
	return m, nil
}

// peerPresentLen is the payload length of servers from v1.76.3 until
// v1.104, which end with the flags. Current servers add a length byte and
// up to MaxAppNameLen bytes of AppName.
const peerPresentLen = KeyLen + 16 + 2 + 1

// appendPeerPresent appends the current form: key, address, port, flags,
// then the length-prefixed app name. Old receivers stop after the flags.
func appendPeerPresent(b []byte, peer key.NodePublic, ipp netip.AddrPort, flags PeerPresentFlags, app string) []byte {
	b = peer.AppendTo(b)
	var ip16 [16]byte
	if ipp.Addr().IsValid() {
		ip16 = ipp.Addr().As16()
	}
	b = append(b, ip16[:]...)
	b = binary.BigEndian.AppendUint16(b, ipp.Port())
	b = append(b, byte(flags))
	if len(app) > MaxAppNameLen {
		app = "" // never happens: names are checked at the handshake
	}
	b = append(b, byte(len(app)))
	return append(b, app...)
}

// parsePeerPresent reads as much as is present: the key, then address and
// port if 18 more bytes follow, flags if one more does, then a length byte
// and the app name. A name cut short or not a valid AppName is dropped,
// keeping the rest; bytes after the name are ignored.
func parsePeerPresent(p []byte) (PeerPresentMessage, error) {
	if len(p) < KeyLen {
		return PeerPresentMessage{}, malformed(FramePeerPresent, len(p), "shorter than a key")
	}
	m := PeerPresentMessage{Key: key.NodePublicFromBytes(p)}
	rest := p[KeyLen:]
	if len(rest) < 18 {
		return m, nil
	}
	ip16, port := [16]byte(rest[:16]), binary.BigEndian.Uint16(rest[16:18])
	// A server that did not know the address sends 16 zero bytes and
	// port 0; that is the zero AddrPort, as documented, not [::]:0.
	// See docs/compat.md#peerpresent-unknown-address.
	if ip16 != [16]byte{} || port != 0 {
		m.IPPort = netip.AddrPortFrom(netip.AddrFrom16(ip16).Unmap(), port)
	}
	rest = rest[18:]
	if len(rest) < 1 {
		return m, nil
	}
	m.Flags = PeerPresentFlags(rest[0])
	rest = rest[1:]
	if len(rest) < 1 {
		return m, nil
	}
	n := int(rest[0])
	rest = rest[1:]
	if len(rest) < n {
		return m, nil
	}
	if name := string(rest[:n]); ValidAppName(name) {
		m.AppName = name
	}
	return m, nil
}

func parsePing(t FrameType, p []byte) ([8]byte, error) {
	if len(p) < 8 {
		return [8]byte{}, malformed(t, len(p), "shorter than 8 bytes")
	}
	return [8]byte(p[:8]), nil
}

func appendRestarting(b []byte, reconnectIn, tryFor time.Duration) []byte {
	b = binary.BigEndian.AppendUint32(b, durationMillis32(reconnectIn))
	return binary.BigEndian.AppendUint32(b, durationMillis32(tryFor))
}

// durationMillis32 converts d to whole milliseconds for the wire, clamped
// to the uint32 range so that a negative or huge duration cannot wrap into
// a misleading value.
func durationMillis32(d time.Duration) uint32 {
	return uint32(min(max(d/time.Millisecond, 0), math.MaxUint32))
}

func parseRestarting(p []byte) (ServerRestartingMessage, error) {
	if len(p) < 8 {
		return ServerRestartingMessage{}, malformed(FrameRestarting, len(p), "shorter than 8 bytes")
	}
	return ServerRestartingMessage{
		ReconnectIn: time.Duration(binary.BigEndian.Uint32(p[0:4])) * time.Millisecond,
		TryFor:      time.Duration(binary.BigEndian.Uint32(p[4:8])) * time.Millisecond,
	}, nil
}

// Disco messages start with this 6-byte magic and are at least
// discoMinLen bytes long (magic, sender disco key, nonce).
const (
	discoMagic  = "TS\xf0\x9f\x92\xac"
	discoMinLen = len(discoMagic) + KeyLen + NonceLen
)

// looksLikeDisco reports whether pkt is shaped like a disco message. The
// test is purely syntactic.
func looksLikeDisco(pkt []byte) bool {
	return len(pkt) >= discoMinLen && string(pkt[:len(discoMagic)]) == discoMagic
}
