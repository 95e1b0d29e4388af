package derphttp_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/key"
)

// testCA is a certificate authority made up for one test, with a
// certificate for 127.0.0.1 and "derp.test".
type testCA struct {
	pool *x509.CertPool
	leaf tls.Certificate
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "openderp test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "derp.test"},
		DNSNames:     []string{"derp.test", "other.test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &testCA{pool: pool, leaf: tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}
}

// recordingConn remembers whether the server ever wrote a 101 reply.
type recordingConn struct {
	net.Conn
	rec *writeRecorder
}

type writeRecorder struct {
	mu   sync.Mutex
	sent bool // whether anything starting "HTTP/1.1 101" was written
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.rec.mu.Lock()
	if bytes.HasPrefix(p, []byte("HTTP/1.1 101")) {
		c.rec.sent = true
	}
	c.rec.mu.Unlock()
	return c.Conn.Write(p)
}

func (r *writeRecorder) saw101() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sent
}

type recordingListener struct {
	net.Listener
	rec *writeRecorder
}

func (l recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: c, rec: l.rec}, nil
}

// testServer is a derp.Server behind an HTTP(S) server on loopback.
type testServer struct {
	s    *derp.Server
	hs   *http.Server
	ln   net.Listener
	addr string // host:port
	url  string // of /derp
	rec  *writeRecorder

	mu      sync.Mutex
	headers []http.Header // request headers seen on /derp
}

type serverOpts struct {
	tls       *testCA
	metaCert  bool
	tls12     bool
	websocket bool
	addr      string // listen address; default 127.0.0.1:0
	priv      key.NodePrivate
	meshKey   string
	noRecord  bool // serve the listener's own connections, unwrapped
}

func newTestServer(t testing.TB, o serverOpts) *testServer {
	t.Helper()
	if o.addr == "" {
		o.addr = "127.0.0.1:0"
	}
	if o.priv.IsZero() {
		o.priv = key.NewNode()
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{
		s:    derp.NewServer(o.priv, t.Logf),
		ln:   ln,
		addr: ln.Addr().String(),
		rec:  new(writeRecorder),
	}
	if o.meshKey != "" {
		ts.s.SetMeshKey(o.meshKey)
	}
	var h http.Handler = derphttp.LoggingHandler(ts.s, t.Logf)
	if o.websocket {
		h = derphttp.LoggingWebSocketHandler(ts.s, h, t.Logf)
	}
	mux := http.NewServeMux()
	mux.Handle("/derp", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		ts.headers = append(ts.headers, r.Header.Clone())
		ts.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	mux.HandleFunc("/derp/probe", derphttp.ProbeHandler)
	ts.hs = &http.Server{Handler: mux, ErrorLog: nil}
	var l net.Listener = ln
	scheme := "http"
	if o.tls != nil {
		scheme = "https"
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if o.tls12 {
			cfg.MaxVersion = tls.VersionTLS12
		}
		leaf := o.tls.leaf
		get := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &leaf, nil }
		if o.metaCert {
			get = derphttp.GetCertificateWithMetaCert(get, ts.s.MetaCert())
		}
		cfg.GetCertificate = get
		l = tls.NewListener(ln, cfg)
	}
	// Wrapping the (TLS) listener lets the test see the plaintext the
	// server writes.
	if !o.noRecord {
		l = recordingListener{Listener: l, rec: ts.rec}
	}
	ts.url = scheme + "://" + ts.addr + "/derp"
	go ts.hs.Serve(l)
	t.Cleanup(ts.close)
	return ts
}

func (ts *testServer) close() {
	ts.s.Close()
	ts.hs.Close()
}

func (ts *testServer) lastHeader() http.Header {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.headers) == 0 {
		return nil
	}
	return ts.headers[len(ts.headers)-1]
}

// newClient returns a URL client for ts that the test closes.
func newClient(t testing.TB, ts *testServer, ca *testCA) *derphttp.Client {
	t.Helper()
	c, err := derphttp.NewClient(key.NewNode(), ts.url, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if ca != nil {
		c.TLSConfig = &tls.Config{RootCAs: ca.pool}
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recvPacket receives until a packet arrives, skipping other messages, and
// fails the test after a bounded number of messages.
func recvPacket(t testing.TB, c *derphttp.Client) derp.ReceivedPacket {
	t.Helper()
	for range 100 {
		m, err := c.Recv()
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		if p, ok := m.(derp.ReceivedPacket); ok {
			return p
		}
	}
	t.Fatal("no packet in 100 messages")
	return derp.ReceivedPacket{}
}

// waitServerInfo connects c and consumes its first message, which must be
// ServerInfo; after it the server has registered the client.
func waitServerInfo(t testing.TB, c *derphttp.Client) {
	t.Helper()
	m, err := c.Recv()
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	if _, ok := m.(derp.ServerInfoMessage); !ok {
		t.Fatalf("first message = %T; want ServerInfoMessage", m)
	}
}
