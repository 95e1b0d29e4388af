package stun

import "encoding/binary"

// Request returns a new binding request with transaction ID tx, as a
// Tailscale client sends it: RequestLen bytes, with SOFTWARE "tailnode" and
// a FINGERPRINT.
func Request(tx TxID) []byte {
	return AppendRequest(make([]byte, 0, RequestLen), tx)
}

// AppendRequest appends the binding request built by Request to b and
// returns the extended slice.
func AppendRequest(b []byte, tx TxID) []byte {
	start := len(b)
	// The length field counts the FINGERPRINT too, and is in place before
	// the CRC is computed over the header (RFC 5389 §15.5).
	b = appendHeader(b, typeBindingReq, RequestLen-HeaderLen, tx)
	b = binary.BigEndian.AppendUint16(b, attrSoftware)
	b = binary.BigEndian.AppendUint16(b, uint16(len(Software)))
	b = append(b, Software...)
	fp := fingerprint(b[start:])
	b = binary.BigEndian.AppendUint16(b, attrFingerprint)
	b = binary.BigEndian.AppendUint16(b, 4)
	return binary.BigEndian.AppendUint32(b, fp)
}

// ParseBindingRequest validates b as a STUN binding request and returns
// its transaction ID. It does not allocate.
//
// Any RFC 5389 binding request is accepted: the SOFTWARE attribute is not
// required, and a FINGERPRINT is checked only if present, in which case it
// must be the last attribute and match. Unknown attributes are skipped.
// As in the reference, the attributes are walked over the whole datagram
// and the header's length field is not cross-checked.
//
// See docs/compat.md#stun-generic-clients.
func ParseBindingRequest(b []byte) (TxID, error) {
	if !Is(b) {
		return TxID{}, ErrNotSTUN
	}
	if binary.BigEndian.Uint16(b[0:2]) != typeBindingReq {
		return TxID{}, ErrNotBindingRequest
	}
	tx := TxID(b[8:HeaderLen])
	it := attrIter{rest: b[HeaderLen:]}
	for {
		typ, val, last, ok := it.next()
		if !ok {
			break
		}
		if typ == attrFingerprint {
			if !last {
				return TxID{}, ErrFingerprintNotLast
			}
			if err := checkFingerprint(b, val); err != nil {
				return TxID{}, err
			}
		}
	}
	if it.err != nil {
		return TxID{}, it.err
	}
	return tx, nil
}
