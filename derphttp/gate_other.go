//go:build !linux

package derphttp

import "net"

// waitReadable hands connections over at once where peeking at a socket
// without reading is not implemented.
func waitReadable(net.Conn, <-chan struct{}) error { return nil }
