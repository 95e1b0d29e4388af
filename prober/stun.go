package prober

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/openderp/openderp/derpmap"
	"github.com/openderp/openderp/stun"
)

// STUN probe timing: each request waits stunReadTimeout for its answer; a
// read that fails faster than stunFastFail is a real error, not a timeout.
const (
	stunReadTimeout = 2 * time.Second
	stunFastFail    = time.Second
	stunRetryPause  = 100 * time.Millisecond
)

// stunClass returns the STUN probe of ip and port (0 meaning 3478);
// family is its address_family label.
func (d *DERPProber) stunClass(ip netip.Addr, port int, family string) ProbeClass {
	if port == 0 {
		port = derpmap.DefaultSTUNPort
	}
	dst := netip.AddrPortFrom(ip, uint16(port))
	return ProbeClass{
		Class:  "derp_udp",
		Labels: Labels{"address_family": family},
		Probe:  func(ctx context.Context) error { return probeSTUN(ctx, dst) },
	}
}

// probeSTUN sends binding requests to dst until a valid answer arrives or
// ctx ends.
func probeSTUN(ctx context.Context, dst netip.AddrPort) error {
	// A connected socket, unlike the reference's unconnected one, learns
	// of ICMP port-unreachable replies, so a node without a STUN server
	// fails at once rather than at the timeout.
	// See docs/compat.md#prober-udp.
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(dst))
	if err != nil {
		return fmt.Errorf("opening UDP socket to %v: %w", dst.Addr(), err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stop()

	tx := stun.NewTxID()
	req := stun.Request(tx)
	buf := make([]byte, 9000)
	for {
		if _, err := conn.Write(req); err != nil {
			return fmt.Errorf("sending STUN request to %v: %w", dst.Addr(), err)
		}
		sent := time.Now()
		if ctx.Err() != nil {
			return fmt.Errorf("timeout reading from %v: %w", dst.Addr(), ctx.Err())
		}
		dl := sent.Add(stunReadTimeout)
		ctxDeadline := false
		if cd, ok := ctx.Deadline(); ok && cd.Before(dl) {
			dl, ctxDeadline = cd, true
		}
		conn.SetReadDeadline(dl)
		n, err := conn.Read(buf)
		if err != nil {
			// The socket deadline may fire a moment before ctx notices
			// its own.
			var ne net.Error
			if ctx.Err() != nil || ctxDeadline && errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("timeout reading from %v: %w", dst.Addr(), err)
			}
			if time.Since(sent) < stunFastFail {
				return fmt.Errorf("error reading from %v: %w", dst.Addr(), err)
			}
			t := time.NewTimer(stunRetryPause)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("timeout reading from %v: %w", dst.Addr(), ctx.Err())
			case <-t.C:
			}
			continue
		}
		rtx, _, err := stun.ParseResponse(buf[:n])
		if err != nil {
			return fmt.Errorf("parsing STUN response from %v: %w", dst.Addr(), err)
		}
		if rtx != tx {
			return fmt.Errorf("STUN response from %v has transaction ID %v; want %v", dst.Addr(), rtx, tx)
		}
		return nil
	}
}
