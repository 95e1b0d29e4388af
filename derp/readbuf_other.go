//go:build !linux

package derp

import "errors"

// canReadNonblocking says whether readNonblocking works here: only on
// Linux so far; elsewhere the read loop keeps its buffer.
const canReadNonblocking = false

func readNonblocking(fd int, p []byte) (int, error) {
	return 0, errors.ErrUnsupported
}

func wouldBlock(err error) bool { return false }
