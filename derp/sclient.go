package derp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/openderp/openderp/key"
)

// sclient is the server's side of one client connection. Its read loop
// runs in the goroutine that called Accept, or in a fresh one after
// AcceptBackground; writers, the only ones to write after the handshake,
// run in goroutines of their own while there is something to write.
type sclient struct {
	s            *Server          // set once
	nc           Conn             // set once
	key          key.NodePublic   // set once
	info         clientInfo       // set once
	canMesh      bool             // set once; presented the mesh key
	notIdeal     bool             // set once; see ConnOptions.NotIdeal
	flags        PeerPresentFlags // set once
	remoteAddr   string           // set once
	ipPort       netip.AddrPort   // set once; zero if remoteAddr did not parse
	connNum      int64            // set once
	connected    time.Time        // set once
	logPrefix    string           // set once
	writeTimeout time.Duration    // set once; 0: no write deadline

	stats connStats // atomic; per-connection counters for debug pages

	br *bufio.Reader // owned by the read loop; nil while idle (see awaitData)
	rs readSide      // owned by the read loop
	bw *bufio.Writer // owned by the send loop; a pooled writer while it writes, else nil

	preferred    bool          // owned by the read loop
	wake         chan struct{} // owned by the read loop; made on first push-back wait
	waitTimer    *time.Timer   // owned by the read loop; made on first push-back wait
	notHereLimit *rate.Limiter // owned by the read loop; made on first use
	recvLimit    recvLimiter   // owned by the read loop
	routes       routeCache    // owned by the read loop

	isDup atomic.Bool // one of several connections for key

	isWatcher bool // guarded by Server.mu
	rttState  int8 // set by initRTT before registration, then read by the RTT sampler
	debug     bool // set once: verbose logs (DERP_DEBUG_LOGS, DERP_PROBER_DEBUG_LOGS)

	// Dup-set state, guarded by Server.mu; see dupSet.
	set              *clientSet  // the set of c's key; set once on registration
	dupPrev, dupNext *sclient    // neighbours in the activity list
	inRecent         bool        // on the activity list
	lastSpoke        atomic.Bool // at the end of the activity list; read without the lock

	// Send state, guarded by qmu. Lock order: Server.mu, then qmu.
	qmu        sync.Mutex
	packets    packetRing
	disco      packetRing
	pong       [8]byte
	hasPong    bool
	peerGone   []PeerGoneMessage
	meshEvents []meshEvent
	keepAlive  bool // a keep-alive frame is due
	ready      bool // ServerInfo is written; writers may start
	writing    bool // a writer goroutine is running
	finished   bool // the connection is ending; queue nothing more
	writeErr   error
	waiters    []*sclient // readers waiting for room in a queue; see pushback.go
	stalled    bool       // a reader gave up waiting; no waiting until the queues empty

	// Shutdown state, guarded by qmu; see shutdown.go.
	restart       [8]byte       // Restarting payload to write
	hasRestart    bool          // restart is due
	restartQueued bool          // restart was queued once; never again
	noMore        bool          // the server is closing: queue no more packets
	flushed       chan struct{} // closed when the writer stops; made by stopQueueing

	writeSince atomic.Int64 // monoNow when the running write began; 0 if none

	writers sync.WaitGroup // the writer goroutine, while one runs
	kaDue   atomic.Int64   // monoNow when the next keep-alive is due; see keepalive.go

	writeLoopFunc func() // set once: c.writeLoop, bound once

	// Owned by whichever writer goroutine runs; successive writers hand
	// them over through qmu.
	scratch  [96]byte                    // small frame payloads
	sentFrom map[key.NodePublic]struct{} // sources written so far
	lastFrom key.NodePublic              // the source last written, in sentFrom; zero if none
}

// meshEvent is a PeerPresent or PeerGone record for a watcher.
type meshEvent struct {
	key    key.NodePublic
	gone   bool
	ipPort netip.AddrPort
	flags  PeerPresentFlags
	app    string
}

// serveConn runs the handshake, registers the client and relays until the
// connection ends.
func (s *Server) serveConn(ctx context.Context, nc Conn, brw *bufio.ReadWriter, remoteAddr string, connNum int64, opts ConnOptions) error {
	c, err := s.startConn(ctx, nc, brw, remoteAddr, connNum, opts)
	if err != nil {
		if isHandshakeProtocolError(err) {
			s.metrics.protocolErrors.Add(1)
		}
		return err
	}
	return c.run(ctx)
}

// startConn runs the handshake, registers the client, writes ServerInfo
// and lets the send side start. On success the caller must call run.
func (s *Server) startConn(ctx context.Context, nc Conn, brw *bufio.ReadWriter, remoteAddr string, connNum int64, opts ConnOptions) (*sclient, error) {
	clientKey, info, box, err := s.serverHandshake(ctx, nc, brw, remoteAddr)
	if err != nil {
		return nil, err
	}
	c := &sclient{
		s:          s,
		nc:         nc,
		key:        clientKey,
		info:       *info,
		canMesh:    s.isMeshKey(info.MeshKey),
		notIdeal:   opts.NotIdeal,
		remoteAddr: remoteAddr,
		ipPort:     parseRemoteAddr(remoteAddr),
		connNum:    connNum,
		connected:  time.Now(),
		logPrefix:  fmt.Sprintf("derp client %s%s: ", remoteAddr, clientKey.ShortString()),
	}
	c.initReader(nc, brw.Reader)
	c.flags = presentFlags(c.canMesh, info.IsProber, c.notIdeal)
	c.writeTimeout = s.writeTimeoutFor(c.canMesh)
	c.debug = debugLogs || (proberDebugLogs && info.IsProber)
	s.initRTT(c)

	if err := s.registerClient(c); err != nil {
		return nil, err
	}
	s.noteRegistered(c)
	noteHandshakeDone(ctx)
	if err := s.sendServerInfo(brw.Writer, box); err != nil {
		c.shutdown()
		s.unregisterClient(c)
		return nil, fmt.Errorf("%swriting server info: %w", c.logPrefix, err)
	}
	c.startWriting()
	if lvl, ok := s.debugLevel(c.debug); ok {
		s.log(lvl, c.logAttrs(nil), "%sconnected (mesh %v, prober %v)", c.logPrefix, c.canMesh, info.IsProber)
	}
	return c, nil
}

// run relays frames from the client until the connection ends, then
// unregisters it. It returns the error worth logging, if any.
func (c *sclient) run(ctx context.Context) error {
	s := c.s
	defer s.unregisterClient(c)
	err := c.readLoop(ctx)
	c.releaseReader()
	c.logReadLoopEnded(err)
	if werr := c.shutdown(); werr != nil && !s.isClosed() {
		c.logSenderFailed(werr)
		if isTimeout(werr) {
			s.metrics.writeTimeouts.Add(1)
		}
	}
	if err == nil || errors.Is(err, io.EOF) || s.isClosed() || ctx.Err() != nil {
		return nil
	}
	if isProtocolError(err) {
		s.metrics.protocolErrors.Add(1)
	}
	return fmt.Errorf("%s%w", c.logPrefix, err)
}

// logReadLoopEnded and logSenderFailed are kept out of run, whose frame
// stays on the stack of every idle connection: inlined, the log calls'
// arguments would double that stack (see docs/performance.md#idle-tls).
//
//go:noinline
func (c *sclient) logReadLoopEnded(err error) {
	if lvl, ok := c.s.debugLevel(c.debug); ok {
		c.s.log(lvl, c.logAttrs(err), "%sread loop ended: %v", c.logPrefix, err)
	}
}

//go:noinline
func (c *sclient) logSenderFailed(err error) {
	c.s.log(slog.LevelInfo, c.logAttrs(err), "%ssender failed: %v", c.logPrefix, err)
}

// logAttrs describes the connection for a log line about it.
func (c *sclient) logAttrs(err error) connLog {
	return connLog{addr: c.remoteAddr, key: c.key, err: err}
}

func presentFlags(mesh, prober, notIdeal bool) PeerPresentFlags {
	var f PeerPresentFlags
	if mesh {
		f |= PeerPresentIsMeshPeer
	}
	if prober {
		f |= PeerPresentIsProber
	}
	if notIdeal {
		f |= PeerPresentNotIdeal
	}
	if f == 0 {
		f = PeerPresentIsRegular
	}
	return f
}

// readBurst is how many frames the read loop handles without blocking
// before it yields the processor to other goroutines. A flat-out sender
// whose socket always has data would otherwise keep its reader running
// for a whole scheduling quantum while other clients' readers, and the
// writers that deliver to them, wait behind it: a bound on the work done
// per wake-up keeps the delay of other traffic short under load.
const readBurst = 32

// readLoop handles frames from the client until an error. A clean EOF is
// returned as io.EOF.
func (c *sclient) readLoop(ctx context.Context) error {
	burst := 0
	for {
		if burst++; burst > readBurst {
			burst = 0
			runtime.Gosched()
		}
		if err := c.awaitData(); err != nil {
			return err
		}
		if c.rs.parked {
			c.rs.parked = false
			burst = 0 // it blocked: others ran meanwhile
		}
		t, n, err := ReadFrameHeader(c.br)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := c.waitRecvLimit(ctx, n); err != nil {
			return err
		}
		if c.isDup.Load() && !c.isLastSpeaker() {
			c.s.noteActive(c)
		}
		if err := c.handleFrame(t, n); err != nil {
			return err
		}
	}
}

// handleFrame handles one frame whose header has been read.
func (c *sclient) handleFrame(t FrameType, n uint32) error {
	switch t {
	case FrameSendPacket:
		return c.handleSendPacket(n)
	case FrameForwardPacket:
		if !c.canMesh {
			return ErrInsufficientPermissions
		}
		return c.handleForwardPacket(n)
	case FrameNotePreferred:
		return c.handleNotePreferred(n)
	case FrameWatchConns:
		if n != 0 {
			return malformed(t, int(n), "must be empty")
		}
		if !c.canMesh {
			return ErrInsufficientPermissions
		}
		c.s.addWatcher(c)
		return nil
	case FrameClosePeer:
		if n != KeyLen {
			return malformed(t, int(n), "must be one key")
		}
		if !c.canMesh {
			return ErrInsufficientPermissions
		}
		k, err := c.readKey()
		if err != nil {
			return err
		}
		c.s.closePeer(k)
		return nil
	case FramePing:
		return c.handlePing(n)
	default:
		// Unknown types and frames only a server sends are skipped, as by
		// the reference, but counted, unlike by the reference.
		// See docs/compat.md#unknown-frames.
		c.s.metrics.unknownFrames.Add(1)
		if n > maxUnknownFrameLen {
			return &UnknownFrameTooLargeError{Type: t, Len: n}
		}
		return discardPayload(c.br, n)
	}
}

func (c *sclient) readKey() (key.NodePublic, error) {
	b, err := c.br.Peek(KeyLen)
	if err != nil {
		return key.NodePublic{}, unexpectedEOF(err)
	}
	k := key.NodePublicFromBytes(b)
	c.br.Discard(KeyLen)
	return k, nil
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readPacket reads the packet part of a frame, pktLen bytes, into a pooled
// buffer the caller then owns.
func (c *sclient) readPacket(pktLen int) (*packetBuf, error) {
	pb := getPacketBuf(pktLen)
	if _, err := io.ReadFull(c.br, pb.b); err != nil {
		putPacketBuf(pb)
		return nil, unexpectedEOF(err)
	}
	return pb, nil
}

// peekHead returns the first size bytes of an n-byte payload without
// consuming them. It returns nil, reading nothing, when n is outside
// [size, maxLen]: the parse functions then refuse n by its length alone,
// so a lying length is refused without waiting for bytes that may never
// come, and nothing past the frame is read.
func (c *sclient) peekHead(n uint32, size, maxLen int) ([]byte, error) {
	if n < uint32(size) || n > uint32(maxLen) {
		return nil, nil
	}
	b, err := c.br.Peek(size)
	if err != nil {
		return nil, unexpectedEOF(err)
	}
	return b, nil
}

func (c *sclient) handleSendPacket(n uint32) error {
	head, err := c.peekHead(n, KeyLen, KeyLen+MaxPacketSize)
	if err != nil {
		return err
	}
	dst, pktLen, err := parseSendPacketHead(int(n), head)
	if err != nil {
		return err
	}
	c.br.Discard(KeyLen)
	pb, err := c.readPacket(pktLen)
	if err != nil {
		return err
	}
	c.stats.noteRx(len(pb.b))
	m := c.s.metrics
	m.packetsReceived.Add(1)
	m.bytesReceived.Add(int64(len(pb.b)))
	disco := looksLikeDisco(pb.b)
	if disco {
		m.receivedDisco.Add(1)
	} else {
		m.receivedOther.Add(1)
	}
	c.s.routePacket(c, c.key, dst, pb, false)
	return nil
}

func (c *sclient) handleForwardPacket(n uint32) error {
	head, err := c.peekHead(n, 2*KeyLen, 2*KeyLen+MaxPacketSize)
	if err != nil {
		return err
	}
	src, dst, pktLen, err := parseForwardPacketHead(int(n), head)
	if err != nil {
		return err
	}
	c.br.Discard(2 * KeyLen)
	pb, err := c.readPacket(pktLen)
	if err != nil {
		return err
	}
	c.stats.noteRx(len(pb.b))
	c.s.metrics.packetsForwardedIn.Add(1)
	c.s.routePacket(c, src, dst, pb, true)
	return nil
}

// homeMoveGrace is how long after connecting a change of preference is an
// initial announcement rather than a move.
const homeMoveGrace = 5 * time.Second

func (c *sclient) handleNotePreferred(n uint32) error {
	if n != 1 {
		return malformed(FrameNotePreferred, int(n), "must be one byte")
	}
	b, err := c.br.ReadByte()
	if err != nil {
		return unexpectedEOF(err)
	}
	v := b != 0
	if v == c.preferred {
		return nil
	}
	c.preferred = v
	c.stats.home.Store(v)
	m := c.s.metrics
	if v {
		m.curHomeConns.Add(1)
	} else {
		m.curHomeConns.Add(-1)
	}
	if time.Since(c.connected) > homeMoveGrace {
		if v {
			m.homeMovesIn.Add(1)
		} else {
			m.homeMovesOut.Add(1)
		}
	}
	return nil
}

func (c *sclient) handlePing(n uint32) error {
	if n < 8 || n > maxPingLen {
		return malformed(FramePing, int(n), "length must be 8 to 1000")
	}
	c.s.metrics.gotPing.Add(1)
	b, err := c.br.Peek(8)
	if err != nil {
		return unexpectedEOF(err)
	}
	data := [8]byte(b)
	c.br.Discard(8)
	if err := discardPayload(c.br, n-8); err != nil {
		return err
	}
	c.qmu.Lock()
	if !c.hasPong && !c.finished {
		c.pong, c.hasPong = data, true
		c.wakeLocked()
	}
	c.qmu.Unlock()
	return nil
}

// enqueue queues a packet from src for writing to c, taking ownership of
// pb. from is the connection whose reader brought the packet: when the
// queue is full it waits for room, within bounds (see pushback.go); what
// does not fit after that evicts the oldest queued packet.
func (c *sclient) enqueue(src key.NodePublic, pb *packetBuf, from *sclient) {
	s := c.s
	disco := looksLikeDisco(pb.b)
	periods := 0
	c.qmu.Lock()
	for {
		if c.finished || c.noMore {
			c.qmu.Unlock()
			s.recordDrop(src, c.key, pb.b, dropGoneDisconnected)
			putPacketBuf(pb)
			return
		}
		q := &c.packets
		if disco {
			q = &c.disco
		}
		if q.len() < s.queueDepth || from == nil || c.stalled || s.PushBackWait < 0 {
			break
		}
		if !c.waitForRoomLocked(from, &periods) {
			break
		}
	}
	q := &c.packets
	if disco {
		q = &c.disco
	}
	now := s.monoNow()
	old, evicted := q.push(queuedPacket{src: src, buf: pb, enqueued: now}, s.queueDepth)
	c.wakeLocked()
	c.qmu.Unlock()
	if evicted {
		s.metrics.noteQueueTime(now - old.enqueued)
		s.recordDrop(old.src, c.key, old.buf.b, dropQueueHead)
		putPacketBuf(old.buf)
	}
}

// requestPeerGone queues a PeerGone frame for c.
func (c *sclient) requestPeerGone(peer key.NodePublic, reason PeerGoneReasonType) {
	c.qmu.Lock()
	if c.finished {
		c.qmu.Unlock()
		return
	}
	c.peerGone = append(c.peerGone, PeerGoneMessage{Peer: peer, Reason: reason})
	c.wakeLocked()
	c.qmu.Unlock()
}

// addMeshEvent queues a watcher record; the caller holds Server.mu.
func (c *sclient) addMeshEvent(ev meshEvent) {
	c.qmu.Lock()
	if !c.finished {
		c.meshEvents = append(c.meshEvents, ev)
		c.wakeLocked()
	}
	c.qmu.Unlock()
}

// allowNotHere reports whether the per-connection limit on NotHere
// replies (1/s, burst 3) admits one more.
func (c *sclient) allowNotHere() bool {
	if c.notHereLimit == nil {
		c.notHereLimit = rate.NewLimiter(1, 3)
	}
	return c.notHereLimit.Allow()
}

func (s *Server) monoNow() int64 { return int64(time.Since(s.start)) }
