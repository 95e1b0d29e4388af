package derp

import (
	"errors"
	"fmt"

	"github.com/openderp/openderp/key"
)

// FrameTooLargeError reports a frame whose announced payload length exceeds
// what the reader or writer allows.
type FrameTooLargeError struct {
	Type FrameType
	Len  uint32 // announced payload length
	Max  uint32 // limit in force
}

func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("derp: %v frame of %d bytes exceeds limit of %d", e.Type, e.Len, e.Max)
}

// MalformedFrameError reports a frame whose payload does not have the
// layout its type requires.
type MalformedFrameError struct {
	Type   FrameType
	Len    int    // payload length
	Reason string // what is wrong
}

func (e *MalformedFrameError) Error() string {
	return fmt.Sprintf("derp: malformed %v frame (%d bytes): %s", e.Type, e.Len, e.Reason)
}

func malformed(t FrameType, n int, reason string) error {
	return &MalformedFrameError{Type: t, Len: n, Reason: reason}
}

var (
	// ErrPacketTooLarge is returned when sending a packet larger than
	// MaxPacketSize. Nothing is written.
	ErrPacketTooLarge = errors.New("derp: packet too big")

	// ErrInsufficientPermissions is the reason a server closes a
	// connection that sends a mesh-only frame without the mesh key.
	ErrInsufficientPermissions = errors.New("derp: insufficient permissions")

	// ErrBadMagic is returned by a client whose server greeting does not
	// start with Magic.
	ErrBadMagic = errors.New("derp: server greeting lacks the DERP magic")

	// ErrUnexpectedFrame is returned when the handshake sees a frame of
	// the wrong type.
	ErrUnexpectedFrame = errors.New("derp: unexpected frame type")

	// ErrCannotOpenBox is returned when a sealed handshake message does
	// not authenticate.
	ErrCannotOpenBox = errors.New("derp: cannot open sealed message")

	// ErrZeroKey is returned when a peer presents the all-zero public key,
	// which cannot take part in a NaCl box exchange.
	ErrZeroKey = errors.New("derp: zero public key")

	// ErrServerClosed ends a connection that Accept received after Close
	// began; Accept closes it without logging.
	ErrServerClosed = errors.New("derp: server closed")

	// ErrClientClosed is returned by a Client after it has failed or been
	// closed.
	ErrClientClosed = errors.New("derp: client closed")
)

// RejectedError reports that the server's admission checks refused a
// client. The server closes such a connection without sending a frame.
type RejectedError struct {
	Key    key.NodePublic // the client's key
	Reason string
}

func (e *RejectedError) Error() string {
	return "client " + e.Key.String() + " rejected: " + e.Reason
}

// maxUnknownFrameLen is the longest frame of an unknown type a server
// skips: the size of a maximal SendPacket. Longer ones end the connection.
const maxUnknownFrameLen = KeyLen + MaxPacketSize

// UnknownFrameTooLargeError reports a frame of a type the server does not
// handle that is too long to skip; the server closes the connection.
type UnknownFrameTooLargeError struct {
	Type FrameType
	Len  uint32
}

func (e *UnknownFrameTooLargeError) Error() string {
	return fmt.Sprintf("unknown frame type %d too large: %d bytes", byte(e.Type), e.Len)
}
