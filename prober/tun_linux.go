package prober

import (
	"fmt"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// tunMTU is the TUN device's MTU, as in the reference.
const tunMTU = 1280

// OpenTUN creates the TUN device name (IPv4 packets without a packet
// information header), gives it the first host address of the /30 that
// holds addr, sets its MTU to 1280 and brings it up. The device goes away
// when the TUN is closed. It needs the CAP_NET_ADMIN capability.
func OpenTUN(name string, addr netip.Addr) (*TUN, error) {
	local, peer, err := tunAddrs(addr)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUN device name %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("creating TUN device %s: %w", name, err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUN device %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), "/dev/net/tun")
	if err := configureTUN(ifr.Name(), local); err != nil {
		f.Close()
		return nil, err
	}
	return &TUN{dev: f, name: ifr.Name(), local: local, peer: peer, busy: make(chan struct{}, 1)}, nil
}

// configureTUN assigns local/30 to the device, sets its MTU and brings it
// up.
func configureTUN(name string, local netip.Addr) error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("configuring TUN device %s: %w", name, err)
	}
	defer unix.Close(s)
	set := func(what string, req uint, fill func(*unix.Ifreq) error) error {
		ifr, err := unix.NewIfreq(name)
		if err == nil && fill != nil {
			err = fill(ifr)
		}
		if err == nil {
			err = unix.IoctlIfreq(s, req, ifr)
		}
		if err != nil {
			return fmt.Errorf("TUN device %s: setting %s: %w", name, what, err)
		}
		return nil
	}
	ip := local.As4()
	mask := [4]byte{255, 255, 255, 252}
	if err := set("address", unix.SIOCSIFADDR, func(r *unix.Ifreq) error { return r.SetInet4Addr(ip[:]) }); err != nil {
		return err
	}
	if err := set("netmask", unix.SIOCSIFNETMASK, func(r *unix.Ifreq) error { return r.SetInet4Addr(mask[:]) }); err != nil {
		return err
	}
	if err := set("MTU", unix.SIOCSIFMTU, func(r *unix.Ifreq) error { r.SetUint32(tunMTU); return nil }); err != nil {
		return err
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("TUN device %s: reading flags: %w", name, err)
	}
	flags := ifr.Uint16() | unix.IFF_UP | unix.IFF_RUNNING
	return set("flags", unix.SIOCSIFFLAGS, func(r *unix.Ifreq) error { r.SetUint16(flags); return nil })
}
