package derp

import (
	"bufio"
	"context"
	"expvar"
	"log/slog"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openderp/openderp/key"
)

// Server is a DERP relay. It accepts connections with Accept, keeps track
// of which client key is connected where, and relays packets between
// clients, to and from mesh peers through PacketForwarders.
//
// A Server is safe for concurrent use. Its configuration methods (SetMeshKey,
// SetVerifyClient, ...) should be called before the first Accept.
type Server struct {
	// WriteTimeout, when positive, bounds each frame written to a client
	// that is not a mesh peer once the handshake is done, overriding
	// SetTCPWriteTimeout. Zero leaves the choice to SetTCPWriteTimeout.
	WriteTimeout time.Duration

	// PushBackWait bounds how long the server stops reading from a client
	// whose packet's destination has a full send queue, waiting for the
	// destination to drain, before it drops the oldest queued packet
	// instead. Zero means 100 ms. A negative value turns push-back off: a
	// full queue then drops at once, as in the reference.
	PushBackWait time.Duration

	// MaxConnsPerKey bounds how many connections one client key may have
	// at once; a connection beyond it is refused after its handshake with
	// ErrTooManyConnections. Zero means DefaultMaxConnsPerKey (100).
	MaxConnsPerKey int

	keepAliveForTest time.Duration // replaces the keep-alive period in tests
	queueDepth       int           // set once; capacity of each send queue

	priv       key.NodePrivate             // set once
	pub        key.NodePublic              // set once
	agreer     *key.NodeAgreer             // set once; priv prepared for key agreement
	logf       Logf                        // set once
	slogger    atomic.Pointer[slog.Logger] // nil: use logf; see SetLogger
	connErrLog logLimiter                  // rate-limits logConnError
	metaCert   []byte                      // set once
	start      time.Time                   // set once; base of queuedPacket.enqueued
	metrics    *metrics                    // set once
	vars       *expvar.Map                 // set once
	env        serverEnv                   // set once

	tcpWriteTimeout atomic.Int64 // nanoseconds; 0: no deadline
	rateLimit       rateLimitState

	cfgMu           sync.RWMutex
	meshKey         string          // guarded by cfgMu
	verifyClients   bool            // guarded by cfgMu
	tailscaledSock  string          // guarded by cfgMu
	verifyClientURL string          // guarded by cfgMu
	verifyFailOpen  bool            // guarded by cfgMu
	disallowedApps  map[string]bool // guarded by cfgMu
	admitFuncs      []AdmitFunc     // guarded by cfgMu; copied on append, so a read slice stays valid
	selfKey         selfKeyCache    // the local tailscaled's node key, for verifyClient

	mu          sync.Mutex
	closed      bool                                     // guarded by mu
	draining    bool                                     // guarded by mu; Shutdown has begun
	drained     chan struct{}                            // guarded by mu; closed when draining and no conns are left
	clients     map[key.NodePublic]*clientSet            // guarded by mu
	clientsMesh map[key.NodePublic]PacketForwarder       // guarded by mu; nil value: local only
	watchers    map[*sclient]struct{}                    // guarded by mu
	goneSubs    map[key.NodePublic]map[*sclient]struct{} // guarded by mu; who has received from a key
	keyOfAddr   map[netip.AddrPort]key.NodePublic        // guarded by mu
	conns       map[Conn]struct{}                        // guarded by mu; every connection inside Accept
	connNum     int64                                    // guarded by mu
	rttOnce     sync.Once                                // starts the RTT sampler
	kaOnce      sync.Once                                // starts the keep-alive schedule
	rttStop     chan struct{}                            // closed by Close
	ctx         context.Context                          // set once; cancelled by Close
	cancel      context.CancelFunc                       // set once
	closing     chan struct{}                            // closed by Close
	accepting   sync.WaitGroup                           // one per running Accept
	background  sync.WaitGroup                           // helper goroutines, e.g. ClosePeer closers
	restarting  atomic.Pointer[[8]byte]                  // Restarting payload once Shutdown has begun
}

// MinReaderSize is the smallest read buffer Accept works with: the two
// keys at the head of a ForwardPacket frame.
const MinReaderSize = 2 * KeyLen

// NewServer returns a relay that identifies itself with priv. logf
// receives connection-level log lines; nil discards them.
func NewServer(priv key.NodePrivate, logf Logf) *Server {
	s := &Server{
		priv:        priv,
		pub:         priv.Public(),
		logf:        logf,
		start:       time.Now(),
		metrics:     newMetrics(),
		clients:     make(map[key.NodePublic]*clientSet),
		clientsMesh: make(map[key.NodePublic]PacketForwarder),
		watchers:    make(map[*sclient]struct{}),
		goneSubs:    make(map[key.NodePublic]map[*sclient]struct{}),
		keyOfAddr:   make(map[netip.AddrPort]key.NodePublic),
		conns:       make(map[Conn]struct{}),
		rttStop:     make(chan struct{}),
		closing:     make(chan struct{}),
	}
	s.agreer, _ = priv.Agreer() // nil for the zero key; see sharedBox
	s.ctx, s.cancel = context.WithCancel(context.Background())
	var err error
	if s.queueDepth, err = SendQueueDepthFromEnv(); err != nil {
		logf.printf("%v; using %d", err, s.queueDepth)
	}
	s.metaCert = s.generateMetaCert()
	s.vars = s.expvarMap()
	s.tcpWriteTimeout.Store(int64(DefaultTCPWriteTimeout))
	env, err := readServerEnv(os.Getenv)
	if err != nil {
		// A daemon calls CheckEnv first and refuses to start; a library
		// user gets the defaults for the knobs that did not parse.
		s.logf.printf("derp: %v", err)
	}
	s.env = env
	return s
}

// PublicKey returns the server's public key.
func (s *Server) PublicKey() key.NodePublic { return s.pub }

// PrivateKey returns the server's private key.
func (s *Server) PrivateKey() key.NodePrivate { return s.priv }

// MetaCert returns the DER encoding of the server's self-signed meta
// certificate, which carries its public key and protocol version. An HTTPS
// front end appends it to its certificate chain so that clients can skip a
// round trip (see derphttp).
func (s *Server) MetaCert() []byte { return s.metaCert }

// ExpVar returns the server's metrics as an expvar set, with the
// reference's variable names. Publish it under the name "derp".
func (s *Server) ExpVar() expvar.Var { return s.vars }

// SetMeshKey sets the region's shared mesh key. Clients presenting it
// become mesh peers: they skip client verification and may forward
// packets, watch connections and close peers. An empty k disables meshing.
func (s *Server) SetMeshKey(k string) {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	s.meshKey = k
}

// HasMeshKey reports whether a mesh key is set.
func (s *Server) HasMeshKey() bool {
	s.cfgMu.RLock()
	defer s.cfgMu.RUnlock()
	return s.meshKey != ""
}

// MeshKey returns the mesh key, or "" if none is set.
func (s *Server) MeshKey() string {
	s.cfgMu.RLock()
	defer s.cfgMu.RUnlock()
	return s.meshKey
}

// isMeshKey reports whether k is the configured mesh key; see
// meshKeyMatches.
func (s *Server) isMeshKey(k string) bool {
	mk := s.MeshKey()
	if mk == "" {
		return false
	}
	return meshKeyMatches(mk, k)
}

// SetVerifyClient makes the server admit only clients whose node key the
// local tailscaled knows, asking it over its LocalAPI socket.
func (s *Server) SetVerifyClient(v bool) {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	s.verifyClients = v
}

// SetTailscaledSocket sets the path of the tailscaled LocalAPI socket used
// by SetVerifyClient. The default is DefaultTailscaledSocket.
func (s *Server) SetTailscaledSocket(path string) {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	s.tailscaledSock = path
}

// SetVerifyClientURL makes the server ask an admission controller at url
// whether to admit each client. An empty url disables the check.
func (s *Server) SetVerifyClientURL(url string) {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	s.verifyClientURL = url
}

// SetVerifyClientURLFailOpen sets whether clients are admitted when the
// admission controller cannot be reached. A controller that answers is
// always obeyed.
func (s *Server) SetVerifyClientURLFailOpen(v bool) {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	s.verifyFailOpen = v
}

// Accept serves one client connection until it ends, which it does when
// the client goes away, breaks the protocol, ctx is cancelled or the
// server is closed. The caller chooses the goroutine; Accept closes nc
// before it returns.
//
// brw must read from and write to nc. It may already hold bytes the client
// sent (a fast-start client sends its handshake with the HTTP request),
// and brw.Writer may hold bytes not yet written, such as the HTTP upgrade
// reply: the server's first frame flushes them with it.
// The server peeks at up to MinReaderSize bytes of a frame at once; a
// smaller brw.Reader is wrapped in one of that size.
// remoteAddr is the client's "ip:port", used for logs, PeerPresent and the
// admission check.
func (s *Server) Accept(ctx context.Context, nc Conn, brw *bufio.ReadWriter, remoteAddr string) {
	s.AcceptWithOptions(ctx, nc, brw, remoteAddr, ConnOptions{})
}

// ConnOptions describes what a transport learned about a connection
// before handing it to AcceptWithOptions.
type ConnOptions struct {
	// NotIdeal marks a connection whose HTTP upgrade request carried a
	// non-empty Ideal-Node header: the client's region client reached
	// this node although it would rather use another one. Such
	// connections are counted by gauge_current_notideal_connections and
	// announced to watchers with PeerPresentNotIdeal; routing ignores it.
	NotIdeal bool
}

// AcceptWithOptions is like Accept, with what the transport knows about
// the connection.
func (s *Server) AcceptWithOptions(ctx context.Context, nc Conn, brw *bufio.ReadWriter, remoteAddr string, opts ConnOptions) {
	brw, connNum, ok := s.admitConn(nc, brw)
	if !ok {
		return
	}

	defer func() {
		nc.Close()
		s.mu.Lock()
		delete(s.conns, nc)
		s.noteConnGoneLocked()
		s.mu.Unlock()
		s.accepting.Done()
	}()

	// Cancelling ctx unblocks the reads and writes by closing nc.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()

	if err := s.serveConn(ctx, nc, brw, remoteAddr, connNum, opts); err != nil && !s.isClosed() && ctx.Err() == nil {
		s.logConnError(remoteAddr, key.NodePublic{}, err)
	}
}

// admitConn counts and records a newly accepted connection, giving brw a
// reader of at least MinReaderSize. It reports false, having closed nc, if
// the server is closed or shutting down; otherwise the caller owns one
// s.accepting count.
func (s *Server) admitConn(nc Conn, brw *bufio.ReadWriter) (_ *bufio.ReadWriter, connNum int64, ok bool) {
	s.metrics.accepts.Add(1)
	if brw.Reader.Size() < MinReaderSize {
		brw = bufio.NewReadWriter(bufio.NewReaderSize(brw.Reader, MinReaderSize), brw.Writer)
	}
	s.mu.Lock()
	if s.closed || s.draining {
		s.mu.Unlock()
		nc.Close()
		return brw, 0, false
	}
	s.connNum++
	connNum = s.connNum
	s.conns[nc] = struct{}{}
	s.accepting.Add(1)
	s.mu.Unlock()
	s.startRTTSampler()
	return brw, connNum, true
}

// AcceptBackground is like AcceptWithOptions but returns at once: it
// serves nc on goroutines of the server's own until the client goes away,
// breaks the protocol or the server is closed. It suits a front end such
// as an HTTP handler that would otherwise keep its own, larger goroutine
// and buffers for the connection's life. Close waits for those
// goroutines. The handshake sees ctx's values (see WithHandshakeDone) but
// not its cancellation, which an HTTP server signals as soon as the
// handler returns.
//
// The handshake runs on a goroutine that exits once the client is
// registered; the connection's reader then starts afresh on a goroutine
// with a small stack. A panic while serving is logged and closes only nc.
func (s *Server) AcceptBackground(ctx context.Context, nc Conn, brw *bufio.ReadWriter, remoteAddr string, opts ConnOptions) {
	brw, connNum, ok := s.admitConn(nc, brw)
	if !ok {
		return
	}
	go s.handshakeBackground(context.WithoutCancel(ctx), nc, brw, remoteAddr, connNum, opts)
}

func (s *Server) handshakeBackground(ctx context.Context, nc Conn, brw *bufio.ReadWriter, remoteAddr string, connNum int64, opts ConnOptions) {
	done := true
	defer func() {
		if done {
			s.endConn(nc, remoteAddr, recover())
		}
	}()
	// The server's lifetime bounds the handshake (an admission check may
	// wait on ctx); Close also closes nc.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	c, err := s.startConn(ctx, nc, brw, remoteAddr, connNum, opts)
	if err != nil {
		if isHandshakeProtocolError(err) {
			s.metrics.protocolErrors.Add(1)
		}
		if !s.isClosed() {
			s.logConnError(remoteAddr, key.NodePublic{}, err)
		}
		return
	}
	done = false
	go c.runBackground()
}

func (c *sclient) runBackground() {
	s := c.s
	defer func() { s.endConn(c.nc, c.remoteAddr, recover()) }()
	// The server's lifetime bounds the connection: Close closes nc.
	if err := c.run(context.Background()); err != nil && !s.isClosed() {
		c.logRunError(err)
	}
}

// logRunError logs why a connection ended. It is not inlined into
// runBackground, whose frame stays on every idle connection's stack.
//
//go:noinline
func (c *sclient) logRunError(err error) {
	c.s.logConnError(c.remoteAddr, c.key, err)
}

// endConn closes nc and forgets it once its goroutines are done. p is
// what a panic while serving it left, if anything.
func (s *Server) endConn(nc Conn, remoteAddr string, p any) {
	if p != nil {
		s.log(slog.LevelError, connLog{addr: remoteAddr}, "derp: panic serving %s: %v\n%s", remoteAddr, p, debug.Stack())
	}
	nc.Close()
	s.mu.Lock()
	delete(s.conns, nc)
	s.noteConnGoneLocked()
	s.mu.Unlock()
	s.accepting.Done()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close closes every connection and waits for every Accept to return. It
// is safe to call more than once; later calls return nil at once. Queued
// packets are dropped; Shutdown closes gracefully instead.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cancel()
	close(s.rttStop)
	close(s.closing)
	for nc := range s.conns {
		nc.Close()
	}
	s.mu.Unlock()
	s.accepting.Wait()
	s.background.Wait()
	s.connErrLog.flush(s)
	return nil
}

// numClients returns the number of keys in the region (withRemote) or
// connected locally.
func (s *Server) numClients(withRemote bool) int {
	region, local := s.clientCounts()
	if withRemote {
		return region
	}
	return local
}

// clientCounts returns the number of keys in the region and of those
// connected locally, read together so that their difference, the remote
// count, is never negative.
func (s *Server) clientCounts() (region, local int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clientsMesh), len(s.clients)
}

// Debug switches, read once at start. A boolean variable is on when
// strconv.ParseBool says true: "0", "false" or a typo leave it off.
var (
	// debugLogs turns on verbose logging for every connection
	// (DERP_DEBUG_LOGS).
	debugLogs = envBool("DERP_DEBUG_LOGS")
	// proberDebugLogs turns it on for connections that declared IsProber
	// (DERP_PROBER_DEBUG_LOGS).
	proberDebugLogs = envBool("DERP_PROBER_DEBUG_LOGS")
)

func envBool(name string) bool {
	v, _ := strconv.ParseBool(os.Getenv(name))
	return v
}
