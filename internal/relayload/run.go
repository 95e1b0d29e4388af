package relayload

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/key"
)

// Packet kinds, the first payload byte.
const (
	kindLoad  = 'L' // counted toward delivery
	kindHello = 'H' // warm-up: proves the path before measuring
	kindProbe = 'P' // round-trip probe, echoed by the probe's far end
)

const (
	connectTimeout = 30 * time.Second
	warmTries      = 100
	warmGap        = 50 * time.Millisecond
	windowStall    = 250 * time.Millisecond // window given up as lost after this
	drainQuiet     = 250 * time.Millisecond
	drainMax       = 3 * time.Second
	connectWorkers = 32
)

// pair is one sender and its receiver.
type pair struct {
	snd, rcv *derphttp.Client
	dst      key.NodePublic
	hello    chan struct{} // closed by the receive loop on the first hello
	progress chan struct{} // poked by the receive loop after each packet

	sent atomic.Int64 // written by the sender goroutine
	recv atomic.Int64 // written by the receive loop
}

// run is the shared state of one Run.
type run struct {
	cfg   Config
	base  time.Time // when the run began; receive loops time against it
	start time.Time // when sending began; read only by goroutines started after

	stopOnce sync.Once
	stopCh   chan struct{} // closed when senders must stop
	closing  atomic.Bool   // set before the clients are closed

	total    atomic.Int64 // packets sent by all senders, for MaxPackets
	lastRecv atomic.Int64 // nanoseconds from base to the latest delivery

	errMu sync.Mutex
	err   error // the first failure
}

func (r *run) halt() { r.stopOnce.Do(func() { close(r.stopCh) }) }

func (r *run) stopped() bool {
	select {
	case <-r.stopCh:
		return true
	default:
		return false
	}
}

func (r *run) fail(err error) {
	r.errMu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.errMu.Unlock()
	r.halt()
}

func (r *run) firstErr() error {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.err
}

// Run connects the clients cfg asks for, sends for cfg.Duration (or until
// ctx ends or cfg.MaxPackets is reached), waits briefly for packets still
// in flight, disconnects and reports. On a failure it returns the error
// together with what was measured so far.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, base: time.Now(), stopCh: make(chan struct{})}
	stopCtx := context.AfterFunc(ctx, r.halt)
	defer stopCtx()

	var all []*derphttp.Client
	newClient := func() (*derphttp.Client, error) {
		c, err := derphttp.NewClient(key.NewNode(), cfg.URL, nil)
		if err != nil {
			return nil, fmt.Errorf("relayload: %w", err)
		}
		c.TLSConfig = cfg.TLSConfig
		if cfg.Dial != nil {
			c.SetURLDialer(cfg.Dial)
		}
		all = append(all, c)
		return c, nil
	}
	var loops sync.WaitGroup
	defer func() {
		r.halt()
		r.closing.Store(true)
		for _, c := range all {
			c.Close()
		}
		loops.Wait()
	}()

	pairs := make([]*pair, cfg.Pairs)
	for i := range pairs {
		p := &pair{hello: make(chan struct{}), progress: make(chan struct{}, 1)}
		var err error
		if p.snd, err = newClient(); err != nil {
			return nil, err
		}
		if p.rcv, err = newClient(); err != nil {
			return nil, err
		}
		p.dst = p.rcv.SelfPublicKey()
		pairs[i] = p
	}
	var pr *probe
	if cfg.RTTInterval >= 0 {
		pr = newProbe(cfg.RTTInterval)
		var err error
		if pr.a, err = newClient(); err != nil {
			return nil, err
		}
		if pr.b, err = newClient(); err != nil {
			return nil, err
		}
	}
	if err := connectAll(ctx, all); err != nil {
		return nil, err
	}

	for _, p := range pairs {
		p := p
		loops.Go(func() {
			r.receive(p.rcv, p.hello, func(kind byte, _ []byte) {
				if kind != kindLoad {
					return
				}
				p.recv.Add(1)
				r.lastRecv.Store(int64(time.Since(r.base)))
				select {
				case p.progress <- struct{}{}:
				default:
				}
			})
		})
	}
	if pr != nil {
		loops.Go(func() { r.receive(pr.a, nil, pr.onReply) })
		loops.Go(func() {
			r.receive(pr.b, pr.hello, func(kind byte, data []byte) {
				if kind == kindProbe {
					// Echo at once; data is still valid until the next receive.
					if err := pr.b.Send(pr.a.SelfPublicKey(), data); err != nil {
						r.fail(fmt.Errorf("relayload: echoing probe: %w", err))
					}
				}
			})
		})
	}

	if err := r.warmAll(pairs, pr); err != nil {
		return nil, err
	}
	if cfg.Started != nil {
		cfg.Started()
	}
	r.start = time.Now()
	timer := time.AfterFunc(cfg.Duration, r.halt)
	defer timer.Stop()

	var senders, aux sync.WaitGroup
	for i, p := range pairs {
		senders.Go(func() { r.send(i, p) })
	}
	if pr != nil {
		aux.Go(func() { pr.run(r) })
	}
	if cfg.Progress != nil {
		aux.Go(func() { r.report(pairs) })
	}
	senders.Wait()
	if len(pairs) == 0 {
		<-r.stopCh // only the probe runs: it runs for the whole duration
	}
	sendEnd := time.Since(r.start)
	r.halt()
	r.drain(pairs)
	if cfg.Stopped != nil {
		cfg.Stopped()
	}
	aux.Wait()

	res := &Result{
		URL: cfg.URL, Mode: cfg.Mode(), Pairs: cfg.Pairs, Size: cfg.Size,
		Window: cfg.Window, Rate: cfg.Rate,
	}
	for _, p := range pairs {
		res.Sent += p.sent.Load()
		res.Delivered += p.recv.Load()
	}
	elapsed := max(sendEnd, time.Duration(r.lastRecv.Load())-r.start.Sub(r.base))
	res.Seconds = elapsed.Seconds()
	if res.Sent > 0 {
		res.DropFraction = float64(res.Sent-res.Delivered) / float64(res.Sent)
	}
	if res.Seconds > 0 {
		res.PacketsPerSec = float64(res.Delivered) / res.Seconds
		res.MBPerSec = res.PacketsPerSec * float64(cfg.Size) / 1e6
	}
	if pr != nil {
		res.RTT = pr.summary()
	}
	return res, r.firstErr()
}

// connectAll connects every client, a few at a time.
func connectAll(ctx context.Context, all []*derphttp.Client) error {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	sem := make(chan struct{}, connectWorkers)
	errc := make(chan error, len(all))
	var wg sync.WaitGroup
	for i, c := range all {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := c.Connect(ctx); err != nil {
				errc <- fmt.Errorf("relayload: connecting client %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errc)
	return <-errc // nil if the channel is empty
}

// receive reads c until the run closes it, closing hello on the first
// hello packet and handing every other packet to handle.
func (r *run) receive(c *derphttp.Client, hello chan struct{}, handle func(kind byte, data []byte)) {
	var pkt derp.ReceivedPacket
	helloSeen := false
	for {
		m, err := c.RecvInto(&pkt)
		if err != nil {
			if !r.closing.Load() {
				r.fail(fmt.Errorf("relayload: receiving: %w", err))
			}
			return
		}
		var data []byte
		switch m := m.(type) {
		case *derp.ReceivedPacket:
			data = m.Data
		case derp.ReceivedPacket:
			data = m.Data
		default:
			continue // server info, keep-alives, pings
		}
		if len(data) == 0 {
			continue
		}
		if data[0] == kindHello {
			if !helloSeen && hello != nil {
				helloSeen = true
				close(hello)
			}
			continue
		}
		handle(data[0], data)
	}
}

// warmAll sends hellos on every path until each receiver has seen one,
// so that no measured packet races a registration.
func (r *run) warmAll(pairs []*pair, pr *probe) error {
	type path struct {
		snd   *derphttp.Client
		dst   key.NodePublic
		hello chan struct{}
	}
	var paths []path
	for _, p := range pairs {
		paths = append(paths, path{p.snd, p.dst, p.hello})
	}
	if pr != nil {
		paths = append(paths, path{pr.a, pr.b.SelfPublicKey(), pr.hello})
	}
	sem := make(chan struct{}, connectWorkers)
	errc := make(chan error, len(paths))
	var wg sync.WaitGroup
	for i, p := range paths {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := r.warm(p.snd, p.dst, p.hello); err != nil {
				errc <- fmt.Errorf("relayload: path %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	return r.firstErr()
}

func (r *run) warm(snd *derphttp.Client, dst key.NodePublic, hello chan struct{}) error {
	msg := make([]byte, MinSize)
	msg[0] = kindHello
	t := time.NewTimer(warmGap)
	defer t.Stop()
	for range warmTries {
		if err := snd.Send(dst, msg); err != nil {
			return fmt.Errorf("sending hello: %w", err)
		}
		t.Reset(warmGap)
		select {
		case <-hello:
			return nil
		case <-r.stopCh:
			return errors.New("stopped before the path was ready")
		case <-t.C:
		}
	}
	return fmt.Errorf("no hello arrived in %v", warmTries*warmGap)
}

// send is the sender goroutine of pair i.
func (r *run) send(i int, p *pair) {
	buf := make([]byte, r.cfg.Size)
	buf[0] = kindLoad
	var sent, forgiven int64
	t := time.NewTimer(time.Hour)
	t.Stop()
	var gap time.Duration
	if r.cfg.Rate > 0 {
		gap = time.Duration(float64(time.Second) / r.cfg.Rate)
	}
	next := time.Now()
	for !r.stopped() {
		if w := int64(r.cfg.Window); w > 0 && sent-forgiven-p.recv.Load() >= w {
			t.Reset(windowStall)
			select {
			case <-p.progress:
			case <-t.C:
				forgiven = sent - p.recv.Load() // those are lost
			case <-r.stopCh:
			}
			t.Stop()
			continue
		}
		if gap > 0 {
			now := time.Now()
			if now.Before(next) {
				t.Reset(next.Sub(now))
				select {
				case <-t.C:
				case <-r.stopCh:
				}
				t.Stop()
				continue
			}
			next = next.Add(gap)
			if now.Sub(next) > time.Second {
				next = now // after a long stall, do not burst to catch up
			}
		}
		if lim := r.cfg.MaxPackets; lim > 0 && r.total.Add(1) > lim {
			r.halt()
			return
		}
		if err := p.snd.Send(p.dst, buf); err != nil {
			if !r.stopped() {
				r.fail(fmt.Errorf("relayload: pair %d: sending: %w", i, err))
			}
			return
		}
		sent++
		p.sent.Store(sent)
	}
}

// drain waits, boundedly, for packets still in flight.
func (r *run) drain(pairs []*pair) {
	deadline := time.Now().Add(drainMax)
	lastChange := time.Now()
	prev := int64(-1)
	for time.Now().Before(deadline) {
		var sent, recv int64
		for _, p := range pairs {
			sent += p.sent.Load()
			recv += p.recv.Load()
		}
		if recv >= sent {
			return
		}
		if recv != prev {
			prev, lastChange = recv, time.Now()
		} else if time.Since(lastChange) > drainQuiet {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// report calls cfg.Progress until the senders stop.
func (r *run) report(pairs []*pair) {
	every := r.cfg.ProgressInterval
	if every <= 0 {
		every = time.Second
	}
	tk := time.NewTicker(every)
	defer tk.Stop()
	var prevRecv int64
	prevT := time.Duration(0)
	for {
		select {
		case <-r.stopCh:
			return
		case <-tk.C:
		}
		var pg Progress
		for _, p := range pairs {
			pg.Sent += p.sent.Load()
			pg.Delivered += p.recv.Load()
		}
		pg.Elapsed = time.Since(r.start)
		if d := pg.Elapsed - prevT; d > 0 {
			pg.PacketsPerSec = float64(pg.Delivered-prevRecv) / d.Seconds()
		}
		prevRecv, prevT = pg.Delivered, pg.Elapsed
		r.cfg.Progress(pg)
	}
}
