//go:build !linux

package stunserver

import (
	"errors"
	"net/netip"
	"syscall"
)

var oobSize = 0

func enablePktinfo(syscall.RawConn) error { return errors.New("not supported") }

func parseLocalAddr([]byte) (netip.Addr, bool) { return netip.Addr{}, false }

func appendSourceInfo(b []byte, _ netip.Addr) []byte { return b }

const pktinfoSupported = false
