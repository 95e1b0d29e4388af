package probertest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/derpmap"
	"github.com/openderp/openderp/key"
	"github.com/openderp/openderp/stun/stunserver"
)

// HostName is the name every test node's certificate carries, along
// with the address 127.0.0.1.
const HostName = "localhost"

// CA is a certificate authority made up for one test.
type CA struct {
	Pool *x509.CertPool    // trusts the CA
	Cert *x509.Certificate // the CA certificate
	Key  *ecdsa.PrivateKey // the CA key, to sign OCSP responses

	serial atomic.Int64
}

// NewCA returns a new CA valid from an hour ago for 30 days.
func NewCA(tb testing.TB) *CA {
	tb.Helper()
	return newCA(tb, pkix.Name{CommonName: "probertest CA"})
}

// NewLetsEncryptStyleCA returns a CA named like Let's Encrypt's current
// intermediates (organization "Let's Encrypt"), whose leaves, as theirs
// now do, name no OCSP responder unless asked to.
func NewLetsEncryptStyleCA(tb testing.TB) *CA {
	tb.Helper()
	return newCA(tb, pkix.Name{Organization: []string{"Let's Encrypt"}, Country: []string{"US"}, CommonName: "R13"})
}

func newCA(tb testing.TB, subject pkix.Name) *CA {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               subject,
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(30 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	ca := &CA{Pool: pool, Cert: cert, Key: k}
	ca.serial.Store(1)
	return ca
}

// TLSConfig returns a client configuration trusting the CA.
func (ca *CA) TLSConfig() *tls.Config { return &tls.Config{RootCAs: ca.Pool} }

// LeafOpts shape a leaf certificate. Zero times mean an hour ago and 20
// days from now.
type LeafOpts struct {
	NotBefore, NotAfter time.Time
	OCSPServer          string // responder URL; none if empty
	CRLURL              string // CRL distribution point; none if empty
}

// Leaf returns a certificate for HostName and 127.0.0.1 signed by the CA.
func (ca *CA) Leaf(tb testing.TB, o LeafOpts) tls.Certificate {
	tb.Helper()
	now := time.Now()
	if o.NotBefore.IsZero() {
		o.NotBefore = now.Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = now.Add(20 * 24 * time.Hour)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial.Add(1)),
		Subject:      pkix.Name{CommonName: HostName},
		DNSNames:     []string{HostName},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if o.OCSPServer != "" {
		tmpl.OCSPServer = []string{o.OCSPServer}
	}
	if o.CRLURL != "" {
		tmpl.CRLDistributionPoints = []string{o.CRLURL}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &k.PublicKey, ca.Key)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k, Leaf: leaf}
}

// CRL returns a DER certificate revocation list signed by the CA that
// revokes the given serial numbers (reason: key compromise), valid for
// an hour.
func (ca *CA) CRL(tb testing.TB, revoked ...*big.Int) []byte {
	tb.Helper()
	der, err := ca.makeCRL(revoked...)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

func (ca *CA) makeCRL(revoked ...*big.Int) ([]byte, error) {
	now := time.Now()
	tmpl := &x509.RevocationList{
		Number:     big.NewInt(now.UnixNano()),
		ThisUpdate: now.Add(-time.Minute),
		NextUpdate: now.Add(time.Hour),
	}
	for _, sn := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber:   sn,
			RevocationTime: now.Add(-time.Minute),
			ReasonCode:     1, // keyCompromise
		})
	}
	return x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert, ca.Key)
}

// CRLServer serves a CA's CRL over HTTP on loopback.
type CRLServer struct {
	URL  string       // of the CRL, for LeafOpts.CRLURL
	Hits atomic.Int64 // requests answered

	mu      sync.Mutex
	revoked []*big.Int // guarded by mu
}

// ServeCRL starts serving the CA's CRL, at first revoking nothing; the
// test's cleanup stops it.
func (ca *CA) ServeCRL(tb testing.TB) *CRLServer {
	tb.Helper()
	cs := new(CRLServer)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs.Hits.Add(1)
		cs.mu.Lock()
		der, err := ca.makeCRL(cs.revoked...)
		cs.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/pkix-crl")
		w.Write(der)
	}))
	tb.Cleanup(srv.Close)
	cs.URL = srv.URL + "/ca.crl"
	return cs
}

// Revoke adds a certificate to the CRL served from now on.
func (cs *CRLServer) Revoke(cert *x509.Certificate) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.revoked = append(cs.revoked, cert.SerialNumber)
}

// NodeOpts configure StartNode.
type NodeOpts struct {
	CA         *CA              // required
	Leaf       *tls.Certificate // default: a valid leaf from CA
	NoMetaCert bool             // leave the DERP meta certificate out of the chain
	MeshKey    string           // mesh key of the server, if any
	// VerifyClients admits only mesh peers: other clients are checked
	// against a tailscaled that is not there, and refused.
	VerifyClients bool
}

// Node is a DERP server behind HTTPS on 127.0.0.1 with a STUN server.
type Node struct {
	Server   *derp.Server
	HTTP     *httptest.Server
	Port     int    // HTTPS port
	STUNPort int    // UDP port of the STUN server
	URL      string // https://127.0.0.1:port/derp
}

// safeLogf returns tb.Logf that turns silent once the test is over, so a
// goroutine finishing late cannot fail it.
func safeLogf(tb testing.TB) func(string, ...any) {
	var mu sync.Mutex
	done := false
	tb.Cleanup(func() { // registered first, so it runs last
		mu.Lock()
		done = true
		mu.Unlock()
	})
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			tb.Logf(format, args...)
		}
	}
}

// StartNode starts a node; the test's cleanup stops it.
func StartNode(tb testing.TB, o NodeOpts) *Node {
	tb.Helper()
	logf := safeLogf(tb)
	leaf := o.Leaf
	if leaf == nil {
		l := o.CA.Leaf(tb, LeafOpts{})
		leaf = &l
	}
	s := derp.NewServer(key.NewNode(), logf)
	if o.MeshKey != "" {
		s.SetMeshKey(o.MeshKey)
	}
	if o.VerifyClients {
		s.SetVerifyClient(true)
		s.SetTailscaledSocket(filepath.Join(tb.TempDir(), "no-tailscaled.sock"))
	}
	cert := leaf
	if !o.NoMetaCert {
		cert = derphttp.AppendMetaCert(leaf, s.MetaCert())
	}
	mux := http.NewServeMux()
	mux.Handle("/derp", derphttp.Handler(s))
	mux.HandleFunc("/derp/probe", derphttp.ProbeHandler)
	hs := httptest.NewUnstartedServer(mux)
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
	hs.Config.ErrorLog = log.New(io.Discard, "", 0)
	hs.StartTLS()

	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stunDone := make(chan struct{})
	go func() {
		defer close(stunDone)
		stunserver.New(logf).Serve(ctx, uc)
	}()
	n := &Node{
		Server:   s,
		HTTP:     hs,
		Port:     hs.Listener.Addr().(*net.TCPAddr).Port,
		STUNPort: uc.LocalAddr().(*net.UDPAddr).Port,
	}
	n.URL = "https://127.0.0.1:" + strconv.Itoa(n.Port) + "/derp"
	tb.Cleanup(func() {
		cancel()
		<-stunDone
		s.Close()
		hs.Close()
	})
	return n
}

// Mesh makes every node follow every other's clients, as derper does for
// its mesh peers, so that packets reach clients on any node. The nodes
// must share meshKey.
func Mesh(tb testing.TB, ca *CA, meshKey string, nodes ...*Node) {
	tb.Helper()
	logf := safeLogf(tb)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var clients []*derphttp.Client
	for _, x := range nodes {
		for _, y := range nodes {
			if x == y {
				continue
			}
			m, err := derphttp.NewClient(x.Server.PrivateKey(), y.URL, logf)
			if err != nil {
				tb.Fatal(err)
			}
			m.MeshKey = meshKey
			m.TLSConfig = ca.TLSConfig()
			clients = append(clients, m)
			wg.Add(1)
			go func() {
				defer wg.Done()
				m.RunWatchConnectionLoop(ctx, x.Server.PublicKey(), logf,
					func(p derp.PeerPresentMessage) { x.Server.AddPacketForwarder(p.Key, m) },
					func(g derp.PeerGoneMessage) { x.Server.RemovePacketForwarder(g.Peer, m) })
			}()
		}
	}
	tb.Cleanup(func() {
		cancel()
		for _, m := range clients {
			m.Close()
		}
		wg.Wait()
	})
}

// MapNode describes n as a DERP map node called name in region regionID.
func (n *Node) MapNode(name string, regionID int) *derpmap.Node {
	return &derpmap.Node{
		Name:     name,
		RegionID: regionID,
		HostName: HostName,
		IPv4:     "127.0.0.1",
		IPv6:     "none",
		DERPPort: n.Port,
		STUNPort: n.STUNPort,
	}
}

// DeadNode returns a map node whose TCP and UDP ports have nothing
// listening.
func DeadNode(tb testing.TB, name string, regionID int) *derpmap.Node {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	uport := uc.LocalAddr().(*net.UDPAddr).Port
	uc.Close()
	return &derpmap.Node{Name: name, RegionID: regionID, HostName: HostName, IPv4: "127.0.0.1", IPv6: "none", DERPPort: port, STUNPort: uport}
}

// Region returns a region with the given nodes.
func Region(id int, code string, nodes ...*derpmap.Node) *derpmap.Region {
	return &derpmap.Region{RegionID: id, RegionCode: code, RegionName: "Test " + code, Nodes: nodes}
}

// WriteMap writes m as JSON to a file in a temporary directory and
// returns its file:// URL.
func WriteMap(tb testing.TB, m *derpmap.Map) string {
	tb.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "derpmap.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return "file://" + path
}
