package prober

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
)

// tunChunk is how much the TUN bandwidth probe writes at a time.
const tunChunk = 128 << 10

// TUN is a TUN device for bandwidth probes that carry TCP through DERP,
// as a real client's traffic is carried. Create one with OpenTUN.
type TUN struct {
	dev   *os.File
	name  string
	local netip.Addr // the /30's first host address, assigned to the device
	peer  netip.Addr // the /30's second host address, reached through DERP

	busy chan struct{} // one slot, held by the probe using the device
}

// Name returns the device's name.
func (t *TUN) Name() string { return t.name }

// Addrs returns the address the device holds and the peer address that
// the probes dial through DERP.
func (t *TUN) Addrs() (local, peer netip.Addr) { return t.local, t.peer }

// Close removes the device.
func (t *TUN) Close() error { return t.dev.Close() }

// tunAddrs derives the two host addresses of the /30 that holds addr.
// Unlike the reference, any address of the /30 will do.
// See docs/compat.md#prober-bw-tun.
func tunAddrs(addr netip.Addr) (local, peer netip.Addr, err error) {
	if !addr.Is4() {
		return local, peer, fmt.Errorf("TUN address %v is not IPv4", addr)
	}
	base := netip.PrefixFrom(addr, 30).Masked().Addr()
	local = base.Next()
	return local, local.Next(), nil
}

// WithBandwidthTUN makes the bandwidth probes (WithBandwidthProbing)
// carry a TCP connection over tun through DERP instead of DERP packets,
// one probe at a time. The caller closes tun after the Prober.
func WithBandwidthTUN(tun *TUN) DERPOpt {
	return func(d *DERPProber) { d.bwTUN = &tunBandwidth{tun: tun} }
}

// tunBandwidth is the state of TUN bandwidth probing.
type tunBandwidth struct {
	tun *TUN
}

// tunBandwidthClass returns the TUN bandwidth probe from node from to node
// to.
func (d *DERPProber) tunBandwidthClass(from, to string) ProbeClass {
	var mu sync.Mutex
	var secs float64 // guarded by mu
	var bytes int64  // guarded by mu
	size := d.bwSize
	return ProbeClass{
		Class: "derp_bw",
		Probe: func(ctx context.Context) error {
			elapsed, n, err := d.probeTUNBandwidth(ctx, from, to)
			mu.Lock()
			secs += elapsed.Seconds()
			bytes += n
			mu.Unlock()
			return err
		},
		Metrics: func(ns string, labels Labels) []prometheus.Metric {
			mu.Lock()
			s, b := secs, bytes
			mu.Unlock()
			desc := func(name, help string) *prometheus.Desc {
				return prometheus.NewDesc(prometheus.BuildFQName(ns, "", name), help, nil, prometheus.Labels(labels))
			}
			return []prometheus.Metric{
				prometheus.MustNewConstMetric(desc("derp_bw_probe_size_bytes", "Payload size of the bandwidth probe in bytes."), prometheus.GaugeValue, float64(size)),
				prometheus.MustNewConstMetric(desc("derp_bw_transfer_time_seconds_total", "Time spent transferring data in the bandwidth probe, in seconds."), prometheus.CounterValue, s),
				prometheus.MustNewConstMetric(desc("derp_bw_bytes_total", "Bytes received by the TUN bandwidth probe."), prometheus.CounterValue, float64(b)),
			}
		},
	}
}

// probeTUNBandwidth connects a client to each node, relays the TUN's
// packets for the peer address from the first client to the second and
// back into the TUN with source and destination swapped, and sends
// bwSize bytes over a TCP connection through that path. It returns the
// time from the TCP connect until everything was read, and the bytes
// read, also on failure.
func (d *DERPProber) probeTUNBandwidth(ctx context.Context, from, to string) (time.Duration, int64, error) {
	tun := d.bwTUN.tun
	select {
	case tun.busy <- struct{}{}:
	case <-ctx.Done():
		return 0, 0, fmt.Errorf("waiting for TUN device %s: %w", tun.name, ctx.Err())
	}
	defer func() { <-tun.busy }()

	fromNode, fromRegion, err := d.node(from)
	if err != nil {
		return 0, 0, err
	}
	toNode, toRegion, err := d.node(to)
	if err != nil {
		return 0, 0, err
	}
	fromc, err := d.connectNode(ctx, fromRegion, fromNode, false)
	if err != nil {
		return 0, 0, err
	}
	defer fromc.Close()
	toc, err := d.connectNode(ctx, toRegion, toNode, false)
	if err != nil {
		return 0, 0, err
	}
	defer toc.Close()
	if from != to {
		t := time.NewTimer(meshSettle)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, 0, ctx.Err()
		case <-t.C:
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer func() {
		// Let the next probe read the device.
		tun.dev.SetReadDeadline(time.Time{})
	}()
	defer wg.Wait()
	defer cancel() // before wg.Wait: ends the goroutines
	// Not an AfterFunc: the deadline must be set before wg.Wait returns
	// and the deferred reset clears it for the next probe.
	wg.Go(func() {
		<-ctx.Done()
		fromc.Close()
		toc.Close()
		tun.dev.SetReadDeadline(time.Now())
	})
	relayErr := make(chan error, 2)
	wg.Go(func() { relayErr <- d.tunToDERP(ctx, tun, fromc, toc) })
	wg.Go(func() { relayErr <- tunFromDERP(tun, toc, fromc) })

	ln, err := net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(netip.AddrPortFrom(tun.local, 0)))
	if err != nil {
		return 0, 0, fmt.Errorf("listening on %v: %w", tun.local, err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	type result struct {
		n   int64
		err error
	}
	start := time.Now()
	recv := make(chan result, 1)
	wg.Go(func() {
		c, err := ln.AcceptTCP()
		if err != nil {
			recv <- result{0, fmt.Errorf("accepting: %w", err)}
			return
		}
		defer c.Close()
		stop := context.AfterFunc(ctx, func() { c.Close() })
		defer stop()
		n, err := io.Copy(io.Discard, c)
		if err == nil && n != d.bwSize {
			err = fmt.Errorf("received %d bytes; want %d", n, d.bwSize)
		}
		recv <- result{n, err}
	})

	var dialer net.Dialer
	c, err := dialer.DialContext(ctx, "tcp4", net.JoinHostPort(tun.peer.String(), strconv.Itoa(port)))
	if err != nil {
		ln.Close()
		return time.Since(start), 0, fmt.Errorf("connecting through DERP: %w", err)
	}
	stopc := context.AfterFunc(ctx, func() { c.Close() })
	defer stopc()
	sendErr := func() error {
		defer c.Close()
		buf := make([]byte, tunChunk)
		for left := d.bwSize; left > 0; {
			chunk := buf[:min(left, int64(len(buf)))]
			rand.Read(chunk)
			if _, err := c.Write(chunk); err != nil {
				return fmt.Errorf("writing: %w", err)
			}
			left -= int64(len(chunk))
		}
		return nil
	}()
	var res result
	select {
	case res = <-recv:
	case err := <-relayErr:
		cancel()
		res = <-recv
		res.err = errors.Join(err, res.err)
	}
	elapsed := time.Since(start)
	if ctx.Err() != nil && res.err != nil {
		res.err = fmt.Errorf("timeout: %w", res.err)
	}
	return elapsed, res.n, errors.Join(sendErr, res.err)
}

// tunToDERP sends every IPv4 packet the TUN emits for the peer address,
// with source and destination swapped, from fromc to toc. Swapping keeps
// the IP and TCP checksums valid: both sum the addresses as a pair.
func (d *DERPProber) tunToDERP(ctx context.Context, tun *TUN, fromc, toc *derphttp.Client) error {
	buf := make([]byte, 65536)
	dst := toc.SelfPublicKey()
	peer := tun.peer.As4()
	for {
		n, err := tun.dev.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("reading %s: %w", tun.name, err)
		}
		pkt := buf[:n]
		if n < 20 || pkt[0]>>4 != 4 || [4]byte(pkt[16:20]) != peer {
			continue
		}
		var src [4]byte
		copy(src[:], pkt[12:16])
		copy(pkt[12:16], pkt[16:20])
		copy(pkt[16:20], src[:])
		if err := fromc.Send(dst, pkt); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("sending through DERP: %w", err)
		}
	}
}

// tunFromDERP writes the packets toc receives from fromc into the TUN.
func tunFromDERP(tun *TUN, toc, fromc *derphttp.Client) error {
	src := fromc.SelfPublicKey()
	for {
		m, err := toc.Recv()
		if err != nil {
			return nil // closed at the end of the probe; the TCP side reports failures
		}
		if p, ok := m.(derp.ReceivedPacket); ok && p.Source == src {
			tun.dev.Write(p.Data)
		}
	}
}
