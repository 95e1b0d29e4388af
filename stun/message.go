package stun

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
)

// Wire constants (RFC 5389 §6, §15).
const (
	// HeaderLen is the size of the fixed STUN message header.
	HeaderLen = 20

	// DefaultPort is the UDP port STUN servers listen on by default.
	DefaultPort = 3478

	// Software is the value of the SOFTWARE attribute Tailscale clients
	// put in their binding requests.
	Software = "tailnode"

	// RequestLen is the length of the request built by Request.
	RequestLen = HeaderLen + 4 + len(Software) + 8

	magicCookie      = 0x2112A442
	fingerprintXOR   = 0x5354554E
	typeBindingReq   = 0x0001
	typeBindingResp  = 0x0101
	attrMapped       = 0x0001
	attrXORMapped    = 0x0020
	attrXORMappedAlt = 0x8020 // non-standard code point some servers used
	attrSoftware     = 0x8022
	attrFingerprint  = 0x8028
	fingerprintLen   = 8 // attribute header plus CRC-32
	familyIPv4       = 0x01
	familyIPv6       = 0x02
)

// TxID is a STUN transaction ID.
type TxID [12]byte

// NewTxID returns a transaction ID from the system's cryptographic random
// source.
func NewTxID() TxID {
	var tx TxID
	rand.Read(tx[:]) // never returns an error; it crashes the program instead
	return tx
}

// String returns tx in hexadecimal.
func (tx TxID) String() string { return hex.EncodeToString(tx[:]) }

// Is reports whether b looks like a STUN message: at least a header long,
// the two top bits of the first byte clear and the magic cookie in place.
// It does not look at the type or the attributes.
func Is(b []byte) bool {
	return len(b) >= HeaderLen && b[0]&0xC0 == 0 &&
		binary.BigEndian.Uint32(b[4:8]) == magicCookie
}

// appendHeader appends a header announcing n attribute bytes.
func appendHeader(b []byte, typ uint16, n int, tx TxID) []byte {
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	b = binary.BigEndian.AppendUint32(b, magicCookie)
	return append(b, tx[:]...)
}

// fingerprint is the FINGERPRINT value of a message whose bytes before the
// attribute are msg (RFC 5389 §15.5).
func fingerprint(msg []byte) uint32 {
	return crc32.ChecksumIEEE(msg) ^ fingerprintXOR
}

// attrIter walks a STUN attribute list without allocating.
type attrIter struct {
	rest []byte // attributes not yet returned
	err  error  // set once the list turns out malformed
}

// next returns the next attribute. It returns ok false at the end of the
// list or, with it.err set, when the list is malformed. last reports
// whether the returned attribute ends the list.
func (it *attrIter) next() (typ uint16, val []byte, last, ok bool) {
	if len(it.rest) == 0 {
		return 0, nil, false, false
	}
	if len(it.rest) < 4 {
		it.err = ErrMalformedAttrs
		return 0, nil, false, false
	}
	typ = binary.BigEndian.Uint16(it.rest[0:2])
	n := int(binary.BigEndian.Uint16(it.rest[2:4]))
	padded := (n + 3) &^ 3
	if 4+padded > len(it.rest) {
		it.err = ErrMalformedAttrs
		return 0, nil, false, false
	}
	val = it.rest[4 : 4+n]
	it.rest = it.rest[4+padded:]
	return typ, val, len(it.rest) == 0, true
}

// checkFingerprint validates a FINGERPRINT attribute with value val that
// ends msg.
func checkFingerprint(msg, val []byte) error {
	if len(val) != 4 {
		return ErrBadFingerprint
	}
	if binary.BigEndian.Uint32(val) != fingerprint(msg[:len(msg)-fingerprintLen]) {
		return ErrBadFingerprint
	}
	return nil
}
