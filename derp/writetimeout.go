package derp

import (
	"errors"
	"net"
	"os"
	"time"
)

// DefaultTCPWriteTimeout is the deadline of each write (a burst of
// frames) to clients that are not mesh peers, unless SetTCPWriteTimeout
// changes it.
const DefaultTCPWriteTimeout = 2 * time.Second

// meshWriteTimeout is the deadline of each write to mesh peers,
// whatever SetTCPWriteTimeout says: the initial PeerPresent flood to a
// watcher can take longer than a client's deadline.
const meshWriteTimeout = 30 * time.Second

// SetTCPWriteTimeout sets how long one write (a frame or a burst of
// buffered frames) to a client that is not a mesh peer may take before
// the connection is closed; zero (or a negative value) sets no deadline. It applies to connections accepted
// afterwards. Mesh peers always get 30 seconds.
func (s *Server) SetTCPWriteTimeout(d time.Duration) {
	s.tcpWriteTimeout.Store(int64(max(d, 0)))
}

// writeTimeoutFor returns the deadline of each write to a new
// connection; 0 means none.
func (s *Server) writeTimeoutFor(meshPeer bool) time.Duration {
	switch {
	case meshPeer:
		return meshWriteTimeout
	case s.WriteTimeout > 0:
		return s.WriteTimeout
	}
	return time.Duration(s.tcpWriteTimeout.Load())
}

// isTimeout reports whether err comes from an expired deadline.
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
