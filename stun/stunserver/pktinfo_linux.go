package stunserver

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// oobSize is room for one IPv4 and one IPv6 packet-info message.
var oobSize = unix.CmsgSpace(unix.SizeofInet4Pktinfo) + unix.CmsgSpace(unix.SizeofInet6Pktinfo)

// enablePktinfo asks the kernel to report each datagram's destination
// address: IPV6_RECVPKTINFO and IP_PKTINFO on an IPv6 or dual-stack
// socket, IP_PKTINFO on an IPv4 one.
func enablePktinfo(rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		domain, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
		if err != nil {
			serr = fmt.Errorf("SO_DOMAIN: %w", err)
			return
		}
		ipv6 := domain == unix.AF_INET6
		if ipv6 {
			if serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1); serr != nil {
				serr = fmt.Errorf("IPV6_RECVPKTINFO: %w", serr)
				return
			}
		}
		if err := unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1); err != nil {
			// An IPv6-only socket has no IPv4 traffic to report.
			if !ipv6 {
				serr = fmt.Errorf("IP_PKTINFO: %w", err)
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// parseLocalAddr returns the local address a datagram was received on,
// from the control messages oob: the ipi_spec_dst of an IP_PKTINFO (the
// address the kernel would reply from, even for a broadcast), else the
// ipi6_addr of an IPV6_PKTINFO, unmapped. It does not allocate. Truncated
// or malformed messages are skipped.
func parseLocalAddr(oob []byte) (netip.Addr, bool) {
	var v6 netip.Addr
	for len(oob) >= unix.SizeofCmsghdr {
		clen := int(cmsgLen(oob))
		level := int32(binary.NativeEndian.Uint32(oob[unix.SizeofCmsghdr-8:]))
		typ := int32(binary.NativeEndian.Uint32(oob[unix.SizeofCmsghdr-4:]))
		if clen < unix.SizeofCmsghdr || clen > len(oob) {
			break
		}
		data := oob[unix.CmsgLen(0):clen]
		switch {
		case level == unix.IPPROTO_IP && typ == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			// struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }
			if a := netip.AddrFrom4([4]byte(data[4:8])); usableLocal(a) {
				return a, true
			}
		case level == unix.IPPROTO_IPV6 && typ == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			// struct in6_pktinfo { in6_addr addr; unsigned ifindex; }
			v6 = netip.AddrFrom16([16]byte(data[:16])).Unmap()
		}
		next := unix.CmsgSpace(clen - unix.CmsgLen(0))
		if next > len(oob) || next <= 0 {
			break
		}
		oob = oob[next:]
	}
	if usableLocal(v6) {
		return v6, true
	}
	return netip.Addr{}, false
}

// cmsgLen reads the length field of the control message header at b.
func cmsgLen(b []byte) uint64 {
	if unix.SizeofCmsghdr == 16 {
		return binary.NativeEndian.Uint64(b)
	}
	return uint64(binary.NativeEndian.Uint32(b))
}

// appendSourceInfo appends to b the control message that makes a reply
// leave from local: IP_PKTINFO with ipi_spec_dst for an IPv4 local
// address, IPV6_PKTINFO with ipi6_addr otherwise, interface 0 either way.
func appendSourceInfo(b []byte, local netip.Addr) []byte {
	var level, typ, n int
	if local.Is4() {
		level, typ, n = unix.IPPROTO_IP, unix.IP_PKTINFO, unix.SizeofInet4Pktinfo
	} else {
		level, typ, n = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, unix.SizeofInet6Pktinfo
	}
	start := len(b)
	for range unix.CmsgSpace(n) {
		b = append(b, 0)
	}
	m := b[start:]
	if unix.SizeofCmsghdr == 16 {
		binary.NativeEndian.PutUint64(m, uint64(unix.CmsgLen(n)))
	} else {
		binary.NativeEndian.PutUint32(m, uint32(unix.CmsgLen(n)))
	}
	binary.NativeEndian.PutUint32(m[unix.SizeofCmsghdr-8:], uint32(level))
	binary.NativeEndian.PutUint32(m[unix.SizeofCmsghdr-4:], uint32(typ))
	data := m[unix.CmsgLen(0):]
	if local.Is4() {
		a4 := local.As4()
		copy(data[4:8], a4[:])
	} else {
		a16 := local.As16()
		copy(data[:16], a16[:])
	}
	return b
}

// pktinfoSupported is true where the kernel can report and set a
// datagram's local address.
const pktinfoSupported = true
