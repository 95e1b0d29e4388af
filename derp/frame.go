package derp

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/openderp/openderp/key"
)

// Magic is the 8-byte string that starts every ServerKey frame: "DERP"
// followed by the UTF-8 encoding of U+1F511 (a key).
const Magic = "DERP\xf0\x9f\x94\x91"

// Protocol constants shared by clients and servers.
const (
	// ProtocolVersion is the DERP protocol version this package speaks.
	// Version 2 frames carry the source key in every RecvPacket.
	ProtocolVersion = 2

	// MaxPacketSize is the largest packet, excluding all framing, that a
	// client may send or a server will relay.
	MaxPacketSize = 64 << 10

	// KeepAlive is the base interval between server keep-alive frames.
	KeepAlive = 60 * time.Second

	// KeyLen is the size of a raw public key on the wire.
	KeyLen = 32

	// NonceLen is the size of a NaCl box nonce on the wire.
	NonceLen = 24

	// FrameHeaderLen is the size of a frame header: one type byte and a
	// big-endian uint32 payload length.
	FrameHeaderLen = 1 + 4

	// maxFrameSize is a sanity limit on any frame a writer will emit.
	maxFrameSize = 10 << 20

	// maxInfoLen bounds the JSON inside ClientInfo/ServerInfo as read by a
	// client.
	maxInfoLen = 1 << 20

	// maxClientInfoLen bounds the ClientInfo frame payload a server reads.
	maxClientInfoLen = 256 << 10

	// maxServerKeyLen bounds the first frame a client reads.
	maxServerKeyLen = 1 << 10

	// maxClientFrameLen bounds every frame a client reads after the
	// handshake.
	maxClientFrameLen = 1 << 20

	// maxPingLen bounds Ping payloads a server accepts; only the first 8
	// bytes are used.
	maxPingLen = 1000
)

// FrameType is the first byte of a frame header.
type FrameType byte

// Frame types of protocol version 2. There are no types 0x0b to 0x0f.
const (
	FrameServerKey     FrameType = 0x01 // server → client: Magic, server public key
	FrameClientInfo    FrameType = 0x02 // client → server: client key, sealed JSON
	FrameServerInfo    FrameType = 0x03 // server → client: sealed JSON
	FrameSendPacket    FrameType = 0x04 // client → server: destination key, packet
	FrameRecvPacket    FrameType = 0x05 // server → client: source key, packet
	FrameKeepAlive     FrameType = 0x06 // server → client: empty
	FrameNotePreferred FrameType = 0x07 // client → server: one byte, non-zero = home
	FramePeerGone      FrameType = 0x08 // server → client: peer key, reason
	FramePeerPresent   FrameType = 0x09 // server → watcher: key, IP, port, flags
	FrameForwardPacket FrameType = 0x0a // mesh peer → server: source, destination, packet
	FrameWatchConns    FrameType = 0x10 // mesh peer → server: empty
	FrameClosePeer     FrameType = 0x11 // mesh peer → server: key to disconnect
	FramePing          FrameType = 0x12 // either way: 8 opaque bytes
	FramePong          FrameType = 0x13 // either way: the 8 bytes of a Ping
	FrameHealth        FrameType = 0x14 // server → client: problem text, empty = healthy
	FrameRestarting    FrameType = 0x15 // server → client: reconnect-in, try-for (ms)
)

var frameTypeNames = [...]string{
	FrameServerKey:     "ServerKey",
	FrameClientInfo:    "ClientInfo",
	FrameServerInfo:    "ServerInfo",
	FrameSendPacket:    "SendPacket",
	FrameRecvPacket:    "RecvPacket",
	FrameKeepAlive:     "KeepAlive",
	FrameNotePreferred: "NotePreferred",
	FramePeerGone:      "PeerGone",
	FramePeerPresent:   "PeerPresent",
	FrameForwardPacket: "ForwardPacket",
	FrameWatchConns:    "WatchConns",
	FrameClosePeer:     "ClosePeer",
	FramePing:          "Ping",
	FramePong:          "Pong",
	FrameHealth:        "Health",
	FrameRestarting:    "Restarting",
}

func (t FrameType) String() string {
	if int(t) < len(frameTypeNames) && frameTypeNames[t] != "" {
		return frameTypeNames[t]
	}
	return fmt.Sprintf("FrameType(0x%02x)", byte(t))
}

// ReadFrameHeader reads one frame header from br. It does not allocate.
func ReadFrameHeader(br *bufio.Reader) (t FrameType, n uint32, err error) {
	hdr, err := br.Peek(FrameHeaderLen)
	if err != nil {
		if err == io.EOF && len(hdr) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, err
	}
	t, n = FrameType(hdr[0]), binary.BigEndian.Uint32(hdr[1:])
	br.Discard(FrameHeaderLen)
	return t, n, nil
}

// ReadFrame reads one whole frame from br. The payload is read into buf,
// which is grown if it is too small, and returned; it is valid until buf is
// reused. A frame whose payload is longer than maxSize is not read: the
// header is consumed and a *FrameTooLargeError returned, after which the
// stream is out of sync and must be abandoned.
func ReadFrame(br *bufio.Reader, maxSize uint32, buf []byte) (t FrameType, payload []byte, err error) {
	t, n, err := ReadFrameHeader(br)
	if err != nil {
		return 0, nil, err
	}
	if n > maxSize {
		return t, nil, &FrameTooLargeError{Type: t, Len: n, Max: maxSize}
	}
	if uint64(cap(buf)) < uint64(n) {
		buf = make([]byte, n)
	}
	payload = buf[:n]
	if _, err := io.ReadFull(br, payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return t, nil, fmt.Errorf("derp: reading %v payload: %w", t, err)
	}
	return t, payload, nil
}

// WriteFrameHeader writes a frame header announcing a payload of n bytes.
// It does not allocate.
func WriteFrameHeader(bw *bufio.Writer, t FrameType, n uint32) error {
	if n > maxFrameSize {
		return &FrameTooLargeError{Type: t, Len: n, Max: maxFrameSize}
	}
	b, err := reserve(bw, FrameHeaderLen)
	if err != nil {
		return err
	}
	b = append(b, byte(t))
	b = binary.BigEndian.AppendUint32(b, n)
	_, err = bw.Write(b)
	return err
}

// reserve returns an empty slice of bw's own buffer with room for n bytes,
// flushing first if needed, so small fields can be appended and written
// without a temporary that escapes to the heap. n must not exceed the
// buffer size.
func reserve(bw *bufio.Writer, n int) ([]byte, error) {
	if bw.Available() < n {
		if err := bw.Flush(); err != nil {
			return nil, err
		}
	}
	return bw.AvailableBuffer(), nil
}

// writeKey writes a raw 32-byte key without allocating.
func writeKey(bw *bufio.Writer, k key.NodePublic) error {
	b, err := reserve(bw, KeyLen)
	if err != nil {
		return err
	}
	_, err = bw.Write(k.AppendTo(b))
	return err
}

// WriteFrame writes a frame whose payload is the concatenation of parts.
// It does not flush.
func WriteFrame(bw *bufio.Writer, t FrameType, parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n > maxFrameSize {
		return &FrameTooLargeError{Type: t, Len: uint32(min(uint64(n), math.MaxUint32)), Max: maxFrameSize}
	}
	if err := WriteFrameHeader(bw, t, uint32(n)); err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := bw.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// discardPayload skips n payload bytes of a frame that is not wanted.
func discardPayload(br *bufio.Reader, n uint32) error {
	// In chunks, so that int(n) cannot go negative where int is 32 bits.
	for n > 0 {
		chunk := min(n, 1<<30)
		if _, err := br.Discard(int(chunk)); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		n -= chunk
	}
	return nil
}
