//go:build !linux

package derp

// canAwaitReadable says whether socketReadable works here: only on Linux
// so far; elsewhere the read loop keeps its buffer.
const canAwaitReadable = false

func socketReadable(fd uintptr) bool { return true }
