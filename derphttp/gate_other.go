//go:build !linux

package derphttp

import "net"

// waitReadable hands connections over at once where peeking at a socket
// without reading is not implemented.
func waitReadable(net.Conn) error { return nil }

// waitRequestHead hands connections over at once here, as waitReadable.
func waitRequestHead(net.Conn) error { return nil }

// canPeek says whether peekSocket works here.
const canPeek = false

func peekSocket(uintptr) (ready bool, err error) { return true, nil }
