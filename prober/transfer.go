package prober

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/derpmap"
	"github.com/openderp/openderp/key"
)

const (
	// maxInFlight bounds packets sent but not yet received, just under
	// the 32 packets a server queues per client.
	maxInFlight = 30
	// meshSettle gives the receiving node's mesh peers time to learn
	// about the receiving client before the first packet is sent.
	meshSettle = 100 * time.Millisecond
	// meshPacketSize is the mesh probe's payload.
	meshPacketSize = 8
)

// transferClass returns the probe sending from node from to node to:
// one 8-byte packet for the mesh probe (size 0), size bytes for the
// bandwidth probe.
func (d *DERPProber) transferClass(class, from, to string, size int64) ProbeClass {
	pc := ProbeClass{Class: class}
	if size == 0 {
		pc.Probe = func(ctx context.Context) error {
			pkt := make([]byte, meshPacketSize)
			rand.Read(pkt)
			_, err := d.probeTransfer(ctx, from, to, true, [][]byte{pkt})
			return err
		}
		return pc
	}
	var mu sync.Mutex
	var total time.Duration // guarded by mu
	pc.Probe = func(ctx context.Context) error {
		elapsed, err := d.probeTransfer(ctx, from, to, false, d.bw.payload(size))
		mu.Lock()
		total += elapsed
		mu.Unlock()
		return err
	}
	pc.Metrics = func(ns string, labels Labels) []prometheus.Metric {
		mu.Lock()
		secs := total.Seconds()
		mu.Unlock()
		sizeDesc := prometheus.NewDesc(prometheus.BuildFQName(ns, "", "derp_bw_probe_size_bytes"),
			"Payload size of the bandwidth probe in bytes.", nil, prometheus.Labels(labels))
		timeDesc := prometheus.NewDesc(prometheus.BuildFQName(ns, "", "derp_bw_transfer_time_seconds_total"),
			"Time spent transferring data in the bandwidth probe, in seconds.", nil, prometheus.Labels(labels))
		return []prometheus.Metric{
			prometheus.MustNewConstMetric(sizeDesc, prometheus.GaugeValue, float64(size)),
			prometheus.MustNewConstMetric(timeDesc, prometheus.CounterValue, secs),
		}
	}
	return pc
}

// bwPayloads holds the large bandwidth payloads, made once per size.
type bwPayloads struct {
	mu     sync.Mutex
	bySize map[int64][][]byte // guarded by mu
}

// payload returns the packets of a size-byte transfer: one fresh random
// packet up to derp.MaxPacketSize, else full-size packets (the last one
// shorter) generated once and reused.
func (b *bwPayloads) payload(size int64) [][]byte {
	if size <= derp.MaxPacketSize {
		pkt := make([]byte, size)
		rand.Read(pkt)
		return [][]byte{pkt}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if pkts, ok := b.bySize[size]; ok {
		return pkts
	}
	var pkts [][]byte
	for left := size; left > 0; left -= derp.MaxPacketSize {
		pkt := make([]byte, min(left, derp.MaxPacketSize))
		rand.Read(pkt)
		pkts = append(pkts, pkt)
	}
	if b.bySize == nil {
		b.bySize = make(map[int64][][]byte)
	}
	b.bySize[size] = pkts
	return pkts
}

// probeTransfer connects one new client to each node and sends pkts from
// the first to the second. It returns the time the transfer took (after
// connecting), successful or not.
func (d *DERPProber) probeTransfer(ctx context.Context, from, to string, isProber bool, pkts [][]byte) (time.Duration, error) {
	fromNode, fromRegion, err := d.node(from)
	if err != nil {
		return 0, err
	}
	toNode, toRegion, err := d.node(to)
	if err != nil {
		return 0, err
	}
	fromc, err := d.connectNode(ctx, fromRegion, fromNode, isProber)
	if err != nil {
		return 0, err
	}
	defer fromc.Close()
	toc, err := d.connectNode(ctx, toRegion, toNode, isProber)
	if err != nil {
		return 0, err
	}
	defer toc.Close()

	if from != to {
		t := time.NewTimer(meshSettle)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, fmt.Errorf("%s -> %s: timeout: %w", fromc.SelfPublicKey().ShortString(), toc.SelfPublicKey().ShortString(), ctx.Err())
		case <-t.C:
		}
	}
	start := time.Now()
	err = d.transfer(ctx, fromc, toc, pkts)
	elapsed := time.Since(start)
	if err != nil {
		return elapsed, fmt.Errorf("%s -> %s: %w", fromc.SelfPublicKey().ShortString(), toc.SelfPublicKey().ShortString(), err)
	}
	return elapsed, nil
}

// connectNode connects a new client with a fresh key to node n alone and
// checks the connection: TLS to the node's HostName, and ServerInfo as
// the first message.
func (d *DERPProber) connectNode(ctx context.Context, r *derpmap.Region, n *derpmap.Node, isProber bool) (*derphttp.Client, error) {
	node := *n
	region := &derpmap.Region{
		RegionID:   r.RegionID,
		RegionCode: r.RegionCode + "-" + n.Name,
		RegionName: r.RegionName,
		Nodes:      []*derpmap.Node{&node},
	}
	logf := func(format string, args ...any) {
		if msg := fmt.Sprintf(format, args...); !strings.Contains(msg, "connecting to") {
			d.p.logf("%s", msg)
		}
	}
	c := derphttp.NewRegionClient(key.NewNode(), logf, func() *derpmap.Region { return region })
	c.IsProber = isProber
	c.MeshKey = d.meshKey
	c.TLSConfig = d.nodeTLSConfig(n)
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	if err := c.Connect(ctx); err != nil {
		return nil, fmt.Errorf("connecting to node %s: %w", n.Name, err)
	}
	// Only the mesh probe insists on TLS, so that bandwidth and
	// queuing-delay probes work against plain-HTTP dev servers. The
	// server name is compared with the one the client meant to send:
	// none for an IP literal, where the reference wants the IP and so
	// always fails. See docs/compat.md#prober-mesh-sni.
	if isProber {
		wantSNI := n.HostName
		if isIPLiteral(wantSNI) {
			wantSNI = ""
		}
		cs, isTLS := c.TLSConnectionState()
		switch {
		case !isTLS:
			return nil, fmt.Errorf("node %s: connection is not TLS", n.Name)
		case len(cs.PeerCertificates) == 0:
			return nil, fmt.Errorf("node %s: no peer certificates", n.Name)
		case cs.ServerName != wantSNI:
			return nil, fmt.Errorf("node %s: TLS server name %q; want %q", n.Name, cs.ServerName, wantSNI)
		}
	}
	// Recv only ends on its own after minutes of silence; closing the
	// client bounds it by ctx.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	m, err := c.Recv()
	if !stop() {
		return nil, fmt.Errorf("node %s: timeout waiting for server info: %w", n.Name, ctx.Err())
	}
	if err != nil {
		return nil, fmt.Errorf("node %s: receiving server info: %w", n.Name, err)
	}
	if _, isInfo := m.(derp.ServerInfoMessage); !isInfo {
		return nil, fmt.Errorf("node %s: unexpected first message type %T", n.Name, m)
	}
	ok = true
	return c, nil
}

// transfer sends pkts from fromc to toc and checks that toc receives
// them, in order and intact, before ctx ends.
func (d *DERPProber) transfer(ctx context.Context, fromc, toc *derphttp.Client, pkts [][]byte) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Closing both clients is what unblocks a Send or Recv when ctx ends;
	// the caller's deferred Close calls are then no-ops.
	stop := context.AfterFunc(ctx, func() {
		fromc.Close()
		toc.Close()
	})
	defer stop()

	inFlight := make(chan struct{}, maxInFlight)
	errc := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // sender
		defer wg.Done()
		dst := toc.SelfPublicKey()
		for _, pkt := range pkts {
			select {
			case inFlight <- struct{}{}:
			case <-ctx.Done():
				return
			}
			if err := fromc.Send(dst, pkt); err != nil {
				errc <- fmt.Errorf("sending packet: %w", err)
				return
			}
		}
	}()
	go func() { // receiver
		defer wg.Done()
		src := fromc.SelfPublicKey()
		for i := 0; i < len(pkts); {
			m, err := toc.Recv()
			if err != nil {
				errc <- fmt.Errorf("receiving packet %d: %w", i, err)
				return
			}
			switch m := m.(type) {
			case derp.ReceivedPacket:
				if m.Source != src {
					errc <- fmt.Errorf("packet %d from %s; want %s", i, m.Source.ShortString(), src.ShortString())
					return
				}
				if !bytes.Equal(m.Data, pkts[i]) {
					errc <- fmt.Errorf("packet %d: %d bytes that differ from the %d sent", i, len(m.Data), len(pkts[i]))
					return
				}
				i++
				<-inFlight
			case derp.KeepAliveMessage:
			default:
				d.p.logf("transfer: ignoring %T", m)
			}
		}
		errc <- nil
	}()

	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		err = fmt.Errorf("timeout: %w", ctx.Err())
	}
	cancel()
	wg.Wait()
	return err
}
