package stun

import (
	"encoding/binary"
	"net/netip"
)

// Response returns a binding success response to the request with
// transaction ID tx, telling the client it was seen from addr. The only
// attribute is XOR-MAPPED-ADDRESS; the message is 32 bytes for an IPv4
// addr and 44 bytes otherwise.
//
// The family is taken from addr as given: an IPv4-mapped IPv6 address is
// encoded as IPv6, and the zero Addr as the IPv6 address "::". Callers
// wanting an IPv4 answer for such an address should Unmap it first.
func Response(tx TxID, addr netip.AddrPort) []byte {
	return AppendResponse(make([]byte, 0, HeaderLen+4+4+16), tx, addr)
}

// AppendResponse appends the response built by Response to b and returns
// the extended slice. It does not allocate if b has room.
func AppendResponse(b []byte, tx TxID, addr netip.AddrPort) []byte {
	ip := addr.Addr()
	family, n := byte(familyIPv6), 16
	if ip.Is4() {
		family, n = familyIPv4, 4
	}
	b = appendHeader(b, typeBindingResp, 4+4+n, tx)
	b = binary.BigEndian.AppendUint16(b, attrXORMapped)
	b = binary.BigEndian.AppendUint16(b, uint16(4+n))
	b = append(b, 0, family)
	b = binary.BigEndian.AppendUint16(b, addr.Port()^(magicCookie>>16))
	a16 := ip.As16()
	raw := a16[:]
	if n == 4 {
		raw = raw[12:]
	}
	k := xorKey(tx)
	for i, c := range raw {
		b = append(b, c^k[i])
	}
	return b
}

// xorKey is what XOR-MAPPED-ADDRESS XORs an address with: the magic cookie
// followed by the transaction ID (RFC 5389 §15.2).
func xorKey(tx TxID) (k [16]byte) {
	binary.BigEndian.PutUint32(k[:4], magicCookie)
	copy(k[4:], tx[:])
	return k
}

// ParseResponse validates b as a binding success response and returns its
// transaction ID and the mapped address it reports. It does not allocate.
//
// The address is taken from the last XOR-MAPPED-ADDRESS attribute (type
// 0x0020, or the non-standard 0x8020), else from the last MAPPED-ADDRESS.
// An IPv4-mapped IPv6 address is returned as IPv4. Bytes past the header's
// length field are ignored. A FINGERPRINT, if present, must be the last
// attribute and match; MESSAGE-INTEGRITY and other attributes are skipped.
//
// The transaction ID is returned with every error except ErrNotSTUN; the
// caller should compare it with the one it sent.
func ParseResponse(b []byte) (tx TxID, addr netip.AddrPort, err error) {
	if !Is(b) {
		return TxID{}, netip.AddrPort{}, ErrNotSTUN
	}
	tx = TxID(b[8:HeaderLen])
	if binary.BigEndian.Uint16(b[0:2]) != typeBindingResp {
		return tx, netip.AddrPort{}, ErrNotSuccessResponse
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if HeaderLen+n > len(b) {
		return tx, netip.AddrPort{}, ErrBadLength
	}
	b = b[:HeaderLen+n]
	var xored, plain netip.AddrPort
	it := attrIter{rest: b[HeaderLen:]}
	for {
		typ, val, last, ok := it.next()
		if !ok {
			break
		}
		switch typ {
		case attrXORMapped, attrXORMappedAlt:
			xored, err = parseAddr(val, tx, true)
		case attrMapped:
			plain, err = parseAddr(val, tx, false)
		case attrFingerprint:
			// The reference skips it. See docs/compat.md#stun-response-parsing.
			if !last {
				err = ErrFingerprintNotLast
			} else {
				err = checkFingerprint(b, val)
			}
		}
		if err != nil {
			return tx, netip.AddrPort{}, err
		}
	}
	if it.err != nil {
		return tx, netip.AddrPort{}, it.err
	}
	switch {
	case xored.IsValid():
		addr = xored
	case plain.IsValid():
		addr = plain
	default:
		return tx, netip.AddrPort{}, ErrNoMappedAddress
	}
	return tx, netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port()), nil
}

// parseAddr decodes a MAPPED-ADDRESS value, or an XOR-MAPPED-ADDRESS value
// if xor is set. Bytes past the address are ignored.
func parseAddr(val []byte, tx TxID, xor bool) (netip.AddrPort, error) {
	if len(val) < 4 {
		return netip.AddrPort{}, ErrMalformedAddress
	}
	var n int
	switch val[1] {
	case familyIPv4:
		n = 4
	case familyIPv6:
		n = 16
	default:
		return netip.AddrPort{}, ErrMalformedAddress
	}
	if len(val) < 4+n {
		return netip.AddrPort{}, ErrMalformedAddress
	}
	port := binary.BigEndian.Uint16(val[2:4])
	var raw [16]byte
	copy(raw[:], val[4:4+n])
	if xor {
		port ^= magicCookie >> 16
		k := xorKey(tx)
		for i := range n {
			raw[i] ^= k[i]
		}
	}
	if n == 4 {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(raw[:4])), port), nil
	}
	return netip.AddrPortFrom(netip.AddrFrom16(raw), port), nil
}
