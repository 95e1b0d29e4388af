package stunserver

import (
	"net/netip"
)

// msgConn is the part of *net.UDPConn used to learn each datagram's
// destination address and to answer from it (see pktinfo_linux.go).
type msgConn interface {
	ReadMsgUDPAddrPort(b, oob []byte) (n, oobn, flags int, addr netip.AddrPort, err error)
	WriteMsgUDPAddrPort(b, oob []byte, addr netip.AddrPort) (n, oobn int, err error)
}

// usableLocal reports whether a is an address a reply may be sent from.
func usableLocal(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast()
}
