package derp

import (
	"io"

	"golang.org/x/sys/unix"
)

// canReadNonblocking says whether readNonblocking works here.
const canReadNonblocking = true

// readNonblocking reads from fd, which the runtime poller keeps in
// non-blocking mode. It returns io.EOF at end of stream and unix.EAGAIN
// when there is nothing to read yet.
func readNonblocking(fd int, p []byte) (int, error) {
	for {
		n, err := unix.Read(fd, p)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func wouldBlock(err error) bool { return err == unix.EAGAIN }
