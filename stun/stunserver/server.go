package stunserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/openderp/openderp/stun"
)

// PacketConn is the part of *net.UDPConn a Server uses. The AddrPort
// methods let the serving loop run without allocating.
type PacketConn interface {
	ReadFromUDPAddrPort(b []byte) (n int, addr netip.AddrPort, err error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	LocalAddr() net.Addr
	Close() error
}

// readErrorBackoff is how long the loop pauses after a failed read, so a
// socket stuck in an error state does not spin a CPU.
const readErrorBackoff = time.Second

// Server answers STUN binding requests. The zero value is not usable; call
// New. A Server may serve several sockets at once; its counters are
// shared.
type Server struct {
	// set once at construction
	logf    func(format string, args ...any)
	backoff time.Duration // pause after a read error; tests shorten it
	amp     *ampLimiter   // bounds response bytes beyond request bytes per source
	serving func()        // if set, called once Serve has set up a socket; tests wait on it

	counters counters // written by the serving loops
}

// New returns a Server that logs through logf (nil discards). It logs
// only when it starts listening and when a read fails, never per request.
func New(logf func(format string, args ...any)) *Server {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Server{logf: logf, backoff: readErrorBackoff, amp: newAmpLimiter(DefaultAmplificationRate, DefaultAmplificationBurst)}
}

// SetAmplificationLimit sets how many response bytes beyond the request's
// size each source address (IPv4 address or IPv6 /64) may receive per
// second, and in one burst. A rate <= 0 turns the limit off. Call it
// before Serve.
func (s *Server) SetAmplificationLimit(bytesPerSecond, burst int) {
	s.amp = newAmpLimiter(bytesPerSecond, burst)
}

// ListenAndServe listens on the UDP address addr ("host:port"; an empty or
// wildcard host listens on all addresses of both families) and serves it
// until ctx is done, like Serve.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return fmt.Errorf("stunserver: resolving %q: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return fmt.Errorf("stunserver: listening: %w", err)
	}
	s.logf("STUN server listening on %v", conn.LocalAddr())
	return s.Serve(ctx, conn)
}

// Serve reads datagrams from conn and answers each valid binding request
// to its sender, until ctx is done or conn is closed. It closes conn
// before returning and leaves no goroutine behind.
//
// Serve returns nil when ctx ends it, and the read error when conn fails
// for good (for example because someone else closed it). Other read errors
// are counted, logged and retried after a pause.
func (s *Server) Serve(ctx context.Context, conn PacketConn) error {
	closed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		conn.Close() // unblocks the read below
		close(closed)
	})
	defer func() {
		if stop() {
			conn.Close()
		} else {
			<-closed // the AfterFunc goroutine has started; wait it out
		}
	}()

	// On Linux, learn each datagram's destination so that the reply
	// leaves from the address the client contacted, even on a host with
	// several addresses or behind DNAT.
	mc, _ := conn.(msgConn)
	if mc != nil && pktinfoSupported {
		if err := s.enablePktinfo(conn); err != nil {
			s.logf("STUN server: pktinfo unavailable; responses will use the kernel-chosen source address: %v", err)
			mc = nil
		}
	} else {
		mc = nil
	}

	if s.serving != nil {
		s.serving()
	}

	// One buffer each for the loop's lifetime: a datagram is answered
	// before the next is read, so nothing outlives an iteration.
	buf := make([]byte, 64<<10)
	out := make([]byte, 0, stun.HeaderLen+4+4+16)
	oob := make([]byte, oobSize)
	replyOOB := make([]byte, 0, oobSize)
	for {
		var (
			n     int
			src   netip.AddrPort
			err   error
			local netip.Addr
		)
		if mc != nil {
			var oobn int
			n, oobn, _, src, err = mc.ReadMsgUDPAddrPort(buf, oob)
			if err == nil {
				var ok bool
				if local, ok = parseLocalAddr(oob[:oobn]); !ok {
					s.counters.noLocalAddr.Add(1)
				}
			}
		} else {
			n, src, err = conn.ReadFromUDPAddrPort(buf)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
				return fmt.Errorf("stunserver: reading: %w", err)
			}
			s.counters.readErrors.Add(1)
			s.logf("STUN ReadFrom: %v", err)
			if !s.pause(ctx) {
				return nil
			}
			continue
		}
		var ok bool
		out, ok = s.answer(out[:0], buf[:n], src)
		if !ok {
			continue
		}
		if local.IsValid() {
			replyOOB = appendSourceInfo(replyOOB[:0], local)
			_, _, err = mc.WriteMsgUDPAddrPort(out, replyOOB, src)
		} else {
			_, err = conn.WriteToUDPAddrPort(out, src)
		}
		if err != nil {
			s.counters.writeErrors.Add(1)
		} else {
			s.counters.success.Add(1)
		}
	}
}

// enablePktinfo turns on destination-address reporting for conn, which
// must have a SyscallConn method (as *net.UDPConn has).
func (s *Server) enablePktinfo(conn PacketConn) error {
	sc, ok := conn.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return errors.New("connection has no file descriptor")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	return enablePktinfo(rc)
}

// answer appends to dst the response to datagram pkt from src, and
// reports whether there is one. It counts the datagram, except for the
// outcome of sending the response.
func (s *Server) answer(dst, pkt []byte, src netip.AddrPort) ([]byte, bool) {
	tx, err := stun.ParseBindingRequest(pkt)
	if err != nil {
		s.counters.notSTUN.Add(1)
		return dst, false
	}
	// A dual-stack socket reports IPv4 senders as IPv4-mapped IPv6
	// addresses; answer them as IPv4, which every STUN client reads.
	// See docs/compat.md#stun-ipv4-mapped.
	ip := src.Addr().Unmap()
	if ip.Is4() {
		s.counters.ipv4.Add(1)
	} else {
		s.counters.ipv6.Add(1)
	}
	dst = stun.AppendResponse(dst, tx, netip.AddrPortFrom(ip, src.Port()))
	if !s.amp.allow(ip, len(dst)-len(pkt)) {
		s.counters.ampLimited.Add(1)
		return dst[:0], false
	}
	return dst, true
}

// pause waits out the read-error backoff. It reports false if ctx ended
// first.
func (s *Server) pause(ctx context.Context) bool {
	t := time.NewTimer(s.backoff)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
