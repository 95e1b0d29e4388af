// Package benchserver is the part every benchmark server binary shares:
// the listener (plain or TLS with a fresh self-signed certificate), the
// memory report the harness reads, and the rule that the process ends when
// its standard input closes, so a crashed harness leaves no server behind.
//
// It depends on the standard library only, so that each server module
// keeps exactly the dependency versions of the DERP implementation it
// wraps.
package benchserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"runtime/trace"
	"time"
)

// Ready is the line, in JSON, a server prints on standard output once it
// accepts connections.
type Ready struct {
	Impl string `json:"impl"`
	Addr string `json:"addr"`
	// Pin is "sha256-raw:" and the hex SHA-256 of the leaf certificate, set
	// when the server speaks TLS.
	Pin string `json:"pin,omitempty"`
}

// Mem is the answer of the /bench/mem endpoint, taken right after a
// garbage collection.
type Mem struct {
	HeapObjectsBytes uint64 `json:"heap_objects_bytes"`
	StackBytes       uint64 `json:"stack_bytes"`
	Goroutines       uint64 `json:"goroutines"`
	GOMAXPROCS       int    `json:"gomaxprocs"`
}

// Impl describes one DERP implementation to serve.
type Impl struct {
	// Name is reported in Ready.
	Name string
	// Handler returns the handler for /derp and the server's meta
	// certificate (DER), which is appended to the TLS chain as derper does.
	Handler func() (h http.Handler, metaCert []byte)
	// TLSListener, if set, makes the TLS listener from the TCP one, as
	// the implementation's derper does; by default tls.NewListener.
	TLSListener func(ln net.Listener, cfg *tls.Config) net.Listener
}

// Main parses the flags -tls and -addr, serves impl and exits when
// standard input reaches end of file.
func Main(impl Impl) {
	useTLS := flag.Bool("tls", false, "serve HTTPS with a self-signed certificate")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix(impl.Name + ": ")

	h, meta := impl.Handler()
	mux := http.NewServeMux()
	mux.Handle("/derp", h)
	mux.HandleFunc("/bench/mem", serveMem)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("listening: %v", err)
	}
	// The timeouts derper uses; they end when a connection is hijacked.
	srv := &http.Server{Handler: mux, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	ready := Ready{Impl: impl.Name, Addr: ln.Addr().String()}
	if *useTLS {
		cert, err := selfSigned()
		if err != nil {
			log.Fatalf("making certificate: %v", err)
		}
		sum := sha256.Sum256(cert.Certificate[0])
		ready.Pin = "sha256-raw:" + hex.EncodeToString(sum[:])
		withMeta := cert
		withMeta.Certificate = append(append([][]byte(nil), cert.Certificate...), meta)
		srv.TLSConfig = &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{withMeta},
		}
		if impl.TLSListener != nil {
			ln = impl.TLSListener(ln, srv.TLSConfig)
		} else {
			ln = tls.NewListener(ln, srv.TLSConfig)
		}
	}
	stopProfile, stopTrace := startCPUProfile(impl.Name, *useTLS), startTrace(impl.Name, *useTLS)
	go func() {
		io.Copy(io.Discard, os.Stdin)
		stopProfile()
		stopTrace()
		os.Exit(0)
	}()
	b, _ := json.Marshal(ready)
	fmt.Printf("%s\n", b)
	if err := srv.Serve(ln); err != nil {
		log.Fatalf("serving: %v", err)
	}
}

// CPUProfileEnv, when set, names a file to which the server writes a CPU
// profile of its whole life (for `go tool pprof`), ending when standard
// input closes. The name gets the implementation, "http" or "tls" and
// the process ID appended, so that the servers of one bench/compare run
// write one file each: cpu.out.openderp.tls.1234.
const CPUProfileEnv = "BENCH_CPUPROFILE"

// outName returns the file name that base, from CPUProfileEnv or
// TraceEnv, gives this server process.
func outName(base, impl string, useTLS bool) string {
	mode := "http"
	if useTLS {
		mode = "tls"
	}
	return fmt.Sprintf("%s.%s.%s.%d", base, impl, mode, os.Getpid())
}

func startCPUProfile(impl string, useTLS bool) (stop func()) {
	name := os.Getenv(CPUProfileEnv)
	if name == "" {
		return func() {}
	}
	name = outName(name, impl, useTLS)
	f, err := os.Create(name)
	if err != nil {
		log.Fatalf("creating CPU profile: %v", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		log.Fatalf("starting CPU profile: %v", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// TraceEnv, when set, names a file to which the server writes an execution
// trace of its whole life (for `go tool trace`), ending when standard
// input closes; named as for CPUProfileEnv.
const TraceEnv = "BENCH_TRACE"

func startTrace(impl string, useTLS bool) (stop func()) {
	name := os.Getenv(TraceEnv)
	if name == "" {
		return func() {}
	}
	name = outName(name, impl, useTLS)
	f, err := os.Create(name)
	if err != nil {
		log.Fatalf("creating trace: %v", err)
	}
	if err := trace.Start(f); err != nil {
		log.Fatalf("starting trace: %v", err)
	}
	return func() {
		trace.Stop()
		f.Close()
	}
}

func serveMem(w http.ResponseWriter, r *http.Request) {
	runtime.GC()
	s := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
		{Name: "/sched/goroutines:goroutines"},
	}
	metrics.Read(s)
	m := Mem{s[0].Value.Uint64(), s[1].Value.Uint64(), s[2].Value.Uint64(), runtime.GOMAXPROCS(0)}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(m)
}

// selfSigned returns an ECDSA P-256 certificate for 127.0.0.1, ::1 and
// localhost, valid for a day.
func selfSigned() (tls.Certificate, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, nil
}
