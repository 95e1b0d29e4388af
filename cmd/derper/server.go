package main

import (
	"context"
	"errors"
	"expvar"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/internal/bootstrapdns"
	"github.com/openderp/openderp/internal/certs"
	"github.com/openderp/openderp/internal/debugweb"
	"github.com/openderp/openderp/key"
	"github.com/openderp/openderp/stun/stunserver"
)

// HTTP server timeouts. They only matter until a DERP connection is
// hijacked, and for debug and metrics requests.
const (
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	port80WriteTimout = 5 * time.Minute // long enough for a CPU profile
)

var processStart = time.Now()

// publish registers a top-level expvar unless one of that name exists
// (expvar.Publish panics on duplicates, and tests may run twice).
func publish(name string, v expvar.Var) {
	if expvar.Get(name) == nil {
		expvar.Publish(name, v)
	}
}

// run starts derper as configured by o and serves until ctx ends, logging
// to lg. It returns nil after a clean shutdown.
func run(ctx context.Context, o *options, lg *slog.Logger) error {
	logf := printfLogger(lg, slog.LevelInfo)
	errorf := printfLogger(lg, slog.LevelError) // a part stopped working
	errLog := logWriter{lg, slog.LevelInfo}     // HTTP server errors
	if o.dev {
		// The reference always listens on :3340 (every interface) in dev
		// mode; we honour an explicit -a, so a development relay can stay
		// on loopback. See docs/compat.md#derper-dev-addr.
		if !o.addrSet {
			o.addr = ":3340"
		}
		logf("Running in dev mode.")
	}
	host, port, err := net.SplitHostPort(o.addr)
	if err != nil {
		return fmt.Errorf("invalid server address: %v", err)
	}
	cfg, err := checkOptions(o)
	if err != nil {
		return err
	}
	pf, err := newProxyFront(o.proxyProtocolFrom, logf)
	if err != nil {
		return err
	}

	if o.runSTUN {
		st := stunserver.New(stunLogf(lg))
		o.stunLimit.apply(st)
		publish("stun", st.ExpVar())
		go func() {
			// The reference ignored a failed bind silently.
			// See docs/compat.md#derper-stun-bind.
			if err := st.ListenAndServe(ctx, net.JoinHostPort(host, strconv.Itoa(o.stunPort))); err != nil {
				errorf("STUN server: %v", err)
			}
		}()
	}

	var priv key.NodePrivate
	if o.dev {
		priv = key.NewNode()
	} else {
		path, err := configPath(o.configPath, os.Getuid(), logf)
		if err != nil {
			return err
		}
		if priv, err = loadConfig(path); err != nil {
			return err
		}
	}

	if err := derp.CheckEnv(); err != nil {
		return err
	}
	serveTLS := port == "443" || port == "https" || o.certMode == certs.ModeManual
	s := derp.NewServer(priv, logf)
	s.SetLogger(lg)
	defer s.Close()
	s.SetDisallowedAppNames(parseAppNames(o.disallowAppNames))
	hub := new(reloadHub)
	if o.rateConfig != "" {
		if err := applyRateConfig(s, o.rateConfig, hub, lg); err != nil {
			return err
		}
	}
	s.SetVerifyClient(o.verifyClients)
	if o.socket != "" {
		s.SetTailscaledSocket(o.socket)
	}
	s.SetVerifyClientURL(o.verifyClientURL)
	s.SetVerifyClientURLFailOpen(o.verifyClientFailOpen)
	if err := setupAdmission(ctx, s, &o.admission, hub, logf); err != nil {
		return err
	}
	s.SetTCPWriteTimeout(o.tcpWriteTimeout)
	o.limits.applyServer(s)
	mk, err := meshKey(o, os.LookupEnv, logf)
	if err != nil {
		return err
	}
	if mk != "" {
		s.SetMeshKey(mk)
	}
	// Connections, the mesh and /healthz outlive ctx by the grace period.
	connCtx, endConns := connContext(ctx, o.shutdownGrace)
	defer endConns()
	if err := startMesh(connCtx, s, cfg.mesh, lg); err != nil {
		return fmt.Errorf("startMesh: %w", err)
	}
	publishProcessVars(s)
	hl := new(health)
	if o.metricsAddr != "" {
		mctx, mcancel := context.WithCancel(connCtx)
		wait, err := startMetrics(mctx, o.metricsAddr, hl, logf, errLog)
		if err != nil {
			mcancel()
			return err
		}
		defer func() { mcancel(); wait() }()
	}

	mux := http.NewServeMux()
	dbg := debugweb.New(mux, "derper", derp.Version, cfg.debugEnv, o.dev)
	addDebugPages(dbg, s, o.hostname)
	if o.runDERP {
		mux.Handle("/derp", derphttp.WebSocketHandler(s, derphttp.LoggingHandler(s, logf)))
	} else {
		mux.HandleFunc("/derp", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "no DERP relay here: this server runs with -derp=false", http.StatusNotFound)
		})
	}
	mux.HandleFunc("/derp/probe", derphttp.ProbeHandler)
	mux.HandleFunc("/derp/latency-check", derphttp.ProbeHandler)
	mux.HandleFunc("/generate_204", derphttp.ServeNoContent)
	mux.HandleFunc("/robots.txt", serveRobots)
	bdns := bootstrapdns.New(o.bootstrapDNS, o.unpublishedDNS, nil, logf)
	for name, v := range bdns.Vars() {
		publish(name, v)
	}
	mux.Handle("/bootstrap-dns", withBrowserHeaders(bdns))
	mux.Handle("/", homeHandler(cfg.home, o.runDERP, dbg.Allowed))
	go bdns.Run(ctx)

	var p certs.Provider
	if serveTLS {
		p, err = certs.New(certs.Config{
			Mode:         o.certMode,
			Dir:          o.certDir,
			Hostname:     o.hostname,
			DirectoryURL: o.acmeDirectoryURL,
			Email:        o.acmeEmail,
			EABKeyID:     o.acmeEABKid,
			EABKey:       o.acmeEABKey,
			IPCerts:      o.acmeIPCerts,
			Logf:         logf,
		})
		if err != nil {
			return fmt.Errorf("derper: can not start cert provider: %w", certHint(err, o))
		}
		logCertificate(lg, o, p)
		if r, ok := p.(certs.Reloader); ok {
			watchCertificate(ctx, r, hub, lg)
		}
	}
	hub.start(ctx, logf)
	ln, err := listen(ctx, o.addr, o.tcpKeepAlive, o.tcpUserTimeout)
	if err != nil {
		return fmt.Errorf("derper: %w", err)
	}
	if serveTLS {
		logListening(lg, ln, "DERP and HTTPS")
	} else {
		logListening(lg, ln, "DERP and HTTP")
	}
	ln = pf.wrap(ln) // innermost, so every later layer sees the client's address
	srv := &http.Server{
		Handler:      mux,
		ReadTimeout:  readTimeout,
		WriteTimeout: writeTimeout,
		ErrorLog:     httpErrorLog(errLog),
		// DERP connections run on this context, so shutdown ends them.
		BaseContext: func(net.Listener) context.Context { return connCtx },
	}
	var port80 *http.Server
	serve := func() error { return srv.Serve(ln) }
	if serveTLS {
		tcfg := p.TLSConfig()
		tcfg.MinVersion = cfg.tlsMinVersion
		if _, manual := p.(certs.Reloader); !manual && !o.acmeIPCerts {
			tcfg.GetCertificate = watchACME(lg, o.hostname, tcfg.GetCertificate)
		}
		tcfg.GetCertificate = derphttp.GetCertificateWithMetaCert(tcfg.GetCertificate, s.MetaCert())
		srv.TLSConfig = tcfg
		// Offer HTTP/2 only where the provider advertises it (ACME mode,
		// for browsers); DERP itself needs HTTP/1.1 to hijack.
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		for _, p := range tcfg.NextProtos {
			if p == "h2" {
				srv.Protocols.SetHTTP2(true)
			}
		}
		tm := newTLSMetrics()
		for name, v := range tm.vars() {
			publish(name, v)
		}
		srv.Handler = tm.wrap(refuseConnect(mux))
		limited := newLimitedListener(ln, o.acceptConnLimit, o.acceptConnBurst)
		publish("tls_listener", limited.expVar())
		// The listener completes the TLS handshakes, so that stalled
		// clients stay cheap; see docs/performance.md#stalled-tls.
		ll := o.limits.tlsListener(limited, srv)
		defer ll.Close()
		publish("conn_limits", ll.ExpVar())
		o.limits.apply(srv, ll)
		serve = func() error { return srv.Serve(ll) }

		if o.httpPort > -1 {
			ln80, err := listen(ctx, net.JoinHostPort(host, strconv.Itoa(o.httpPort)), o.tcpKeepAlive, o.tcpUserTimeout)
			if err != nil {
				ln.Close()
				return fmt.Errorf("derper: port 80 listener: %w", err)
			}
			logListening(lg, ln80, "plain HTTP: captive-portal check, ACME, redirects")
			ln80 = pf.wrap(ln80)
			port80 = &http.Server{
				Handler:      p.HTTPHandler(port80Handler(http.HandlerFunc(derphttp.ServeNoContent), mux, dbg.Allowed)),
				ReadTimeout:  readTimeout,
				WriteTimeout: port80WriteTimout,
				ErrorLog:     httpErrorLog(errLog),
			}
			go func() {
				if err := port80.Serve(ln80); err != nil && !errors.Is(err, http.ErrServerClosed) {
					errorf("derper: port 80: %v", err)
				}
			}()
		}
		logStage(lg, stageReady, fmt.Sprintf("derper: serving on %s with TLS", o.addr), "addr", o.addr)
	} else {
		ll := o.limits.listener(ln)
		defer ll.Close()
		publish("conn_limits", ll.ExpVar())
		o.limits.apply(srv, ll)
		serve = func() error { return srv.Serve(ll) }
		logStage(lg, stageReady, fmt.Sprintf("derper: serving on %s", o.addr), "addr", o.addr)
	}

	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	select {
	case err := <-errc:
		if port80 != nil {
			port80.Close()
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("derper: %w", err)
	case <-ctx.Done():
	}
	// Close the listeners and every connection; hijacked DERP connections
	// end through connCtx and s.Close, after the grace period if there is
	// one. See docs/compat.md#derper-shutdown.
	shutdown(s, hl, o.shutdownGrace, func() {
		srv.Close()
		if port80 != nil {
			port80.Close()
		}
	}, logf)
	<-errc
	return nil
}

// publishProcessVars publishes the derp set and the process-wide
// variables the reference derper exports.
func publishProcessVars(s *derp.Server) {
	publish("derp", s.ExpVar())
	pkts, bytes := s.DropVars()
	publish("derp_packets_dropped", pkts)
	publish("derp_bytes_dropped", bytes)
	publish("derp_websocket_accepts", expvar.Func(func() any { return derphttp.WebSocketAccepts() }))
	publish("process_start_unix_time", expvar.Func(func() any { return processStart.Unix() }))
	publish("version", expvar.Func(func() any { return derp.Version }))
	publish("go_version", expvar.Func(func() any { return runtime.Version() }))
	publish("counter_uptime_sec", expvar.Func(func() any { return int64(time.Since(processStart).Seconds()) }))
	publish("gauge_goroutines", expvar.Func(func() any { return runtime.NumGoroutine() }))
	publish("go_sync_mutex_wait_seconds", expvar.Func(func() any {
		sample := []metrics.Sample{{Name: "/sync/mutex/wait/total:seconds"}}
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindFloat64 {
			return sample[0].Value.Float64()
		}
		return 0.0
	}))
}
