package stun

import "errors"

// The parsers return these errors unwrapped, so that rejecting a junk
// datagram costs no allocation. Each names what was wrong.
var (
	// ErrNotSTUN reports a datagram shorter than a STUN header, with
	// either of the two top bits of the first byte set, or without the
	// magic cookie.
	ErrNotSTUN = errors.New("stun: not a STUN message")

	// ErrNotBindingRequest reports a STUN message of another type than
	// Binding request.
	ErrNotBindingRequest = errors.New("stun: not a binding request")

	// ErrNotSuccessResponse reports a STUN message of another type than
	// Binding success response.
	ErrNotSuccessResponse = errors.New("stun: not a binding success response")

	// ErrBadLength reports a header length field that announces more
	// attribute bytes than the datagram holds.
	ErrBadLength = errors.New("stun: header length exceeds datagram")

	// ErrMalformedAttrs reports an attribute list that cannot be walked:
	// a truncated attribute header or a value running past the end.
	ErrMalformedAttrs = errors.New("stun: malformed attributes")

	// ErrMalformedAddress reports a MAPPED-ADDRESS or XOR-MAPPED-ADDRESS
	// value that is too short or has an unknown address family.
	ErrMalformedAddress = errors.New("stun: malformed address attribute")

	// ErrFingerprintNotLast reports a FINGERPRINT attribute followed by
	// other attributes, which RFC 5389 forbids.
	ErrFingerprintNotLast = errors.New("stun: FINGERPRINT is not the last attribute")

	// ErrBadFingerprint reports a FINGERPRINT attribute of the wrong size
	// or whose CRC does not match the message.
	ErrBadFingerprint = errors.New("stun: FINGERPRINT mismatch")

	// ErrNoMappedAddress reports a success response without a
	// MAPPED-ADDRESS or XOR-MAPPED-ADDRESS attribute.
	ErrNoMappedAddress = errors.New("stun: response has no mapped address")
)
