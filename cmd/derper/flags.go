package main

import (
	"flag"
	"math"
	"os"
	"path/filepath"
	"time"
)

// defaultACMEDirectory is Let's Encrypt's production directory, the one
// autocert uses when no directory is set.
const defaultACMEDirectory = "https://acme-v02.api.letsencrypt.org/directory"

// defaultHostname is the reference's -hostname default. ACME treats it
// specially (see internal/certs).
const defaultHostname = "derp.tailscale.com"

// options holds every command-line setting. Set once by parseFlags, read
// only afterwards.
type options struct {
	dev            bool
	version        bool
	addr           string
	addrSet        bool // -a was given explicitly
	httpPort       int
	stunPort       int
	configPath     string
	certMode       string
	certDir        string
	hostname       string
	runSTUN        bool
	runDERP        bool
	meshPSKFile    string
	meshWith       string
	bootstrapDNS   string
	unpublishedDNS string

	verifyClients        bool
	verifyClientURL      string
	verifyClientFailOpen bool
	acceptConnLimit      float64
	acceptConnBurst      int
	tcpKeepAlive         time.Duration
	tcpUserTimeout       time.Duration
	tcpWriteTimeout      time.Duration
	acmeDirectoryURL     string
	rateConfig           string
	disallowAppNames     string

	home        string
	socket      string
	acmeEmail   string
	acmeEABKid  string
	acmeEABKey  string
	acmeIPCerts bool

	limits    connLimits // see limits.go
	stunLimit stunLimit  // see stunlimit.go

	admission admissionOptions // openderp only; see admission.go

	// openderp only
	metricsAddr   string
	tlsMinVersion string
	logFormat     string        // see logging.go
	logLevel      string        // see logging.go
	shutdownGrace time.Duration // see graceful.go

	// openderp only: PROXY protocol (proxyproto.go)
	proxyProtocolFrom string
}

// flagDefaults holds the defaults that depend on the machine, so tests can
// fix them.
type flagDefaults struct {
	certDir     string // "" when there is no user cache directory
	meshPSKFile string // "" when no conventional key file exists
}

// machineDefaults computes the machine-dependent defaults the way the
// reference does: the user cache directory, and the first conventional
// mesh key file that exists.
func machineDefaults() flagDefaults {
	var d flagDefaults
	if dir, err := os.UserCacheDir(); err == nil {
		d.certDir = filepath.Join(dir, "tailscale", "derper-certs")
	}
	candidates := []string{"/home/derp/keys/derp-mesh.key"}
	if home, err := os.UserHomeDir(); err == nil {
		candidates = append(candidates, filepath.Join(home, "keys", "derp-mesh.key"))
	}
	for _, p := range candidates {
		if _, err := os.Stat(p); err == nil {
			d.meshPSKFile = p
			break
		}
	}
	return d
}

// registerFlags defines every flag of the reference derper on fs, with the
// same names, types and defaults (except the Tailscale-internal ones, see
// docs/compat.md#derper-internal-flags), plus -acme-directory-url.
func registerFlags(fs *flag.FlagSet, d flagDefaults) *options {
	o := new(options)
	fs.BoolVar(&o.dev, "dev", false, "development mode on localhost: listen on :3340, ephemeral key, no config file")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.StringVar(&o.addr, "a", ":443", "main listen address: \":port\", \"ip:port\" or \"[ipv6]:port\" (no IP means every interface); HTTPS when the port is 443 or -certmode=manual, plain HTTP otherwise")
	fs.IntVar(&o.httpPort, "http-port", 80, "plain-HTTP port used alongside HTTPS (captive-portal check, ACME, redirects), on the IP of -a; -1 turns it off")
	fs.IntVar(&o.stunPort, "stun-port", 3478, "UDP port of the STUN server, on the IP of -a")
	fs.StringVar(&o.configPath, "c", "", "path of the JSON config file holding the server private key (created if missing)")
	fs.StringVar(&o.certMode, "certmode", "letsencrypt", "where the TLS certificate comes from: letsencrypt (ACME, Let's Encrypt by default), gcp (ACME with Google Trust Services; needs -acme-eab-kid, -acme-eab-key and -acme-email) or manual (files in -certdir)")
	fs.StringVar(&o.certDir, "certdir", d.certDir, "certificate directory: ACME cache in letsencrypt and gcp mode, <hostname>.crt and <hostname>.key in manual mode (generated, self-signed, when -hostname is an IP and they are missing), IP certificates with -acme-ip-certs")
	fs.StringVar(&o.hostname, "hostname", defaultHostname, "TLS host name: the only name ACME may issue for, and the name manual certificates must cover; an IP address works with -certmode=manual (no SNI needed, self-signed certificate pinned by its hash) or with -acme-ip-certs")
	fs.BoolVar(&o.runSTUN, "stun", true, "run the STUN server on the IP of -a")
	fs.BoolVar(&o.runDERP, "derp", true, "run the DERP relay; false keeps STUN, bootstrap DNS and probes but answers /derp with 404")
	fs.StringVar(&o.meshPSKFile, "mesh-psk-file", d.meshPSKFile, "file with the region's mesh key: exactly 64 hex digits, surrounding whitespace ignored; an empty file or no file means no meshing (ignored with -dev, which reads TAILSCALE_DERPER_MESH_KEY)")
	fs.StringVar(&o.meshWith, "mesh-with", "", "comma-separated region nodes to mesh with, each \"host\" or \"host/dialhost\" (TLS name host, TCP connection to dialhost); this node's own name may be listed")
	fs.StringVar(&o.bootstrapDNS, "bootstrap-dns-names", "", "comma-separated host names resolved and published at /bootstrap-dns")
	fs.StringVar(&o.unpublishedDNS, "unpublished-bootstrap-dns-names", "", "comma-separated host names answered at /bootstrap-dns?q= but never listed; name/txtname reads a 0-100 rollout percentage from the TXT record of txtname")
	fs.BoolVar(&o.verifyClients, "verify-clients", false, "admit only node keys that the local tailscaled knows")
	fs.StringVar(&o.socket, "socket", "", "tailscaled LocalAPI unix socket asked by -verify-clients; empty means the platform default")
	fs.StringVar(&o.verifyClientURL, "verify-client-url", "", "admission controller URL asked about each client; empty disables")
	fs.BoolVar(&o.verifyClientFailOpen, "verify-client-url-fail-open", true, "admit clients when the admission controller cannot be reached")
	fs.Float64Var(&o.acceptConnLimit, "accept-connection-limit", math.Inf(+1), "new TLS connections accepted per second (token bucket rate)")
	fs.IntVar(&o.acceptConnBurst, "accept-connection-burst", math.MaxInt, "token bucket burst for new TLS connections")
	fs.DurationVar(&o.tcpKeepAlive, "tcp-keepalive-time", 10*time.Minute, "TCP keepalive period of accepted connections")
	fs.DurationVar(&o.tcpUserTimeout, "tcp-user-timeout", 15*time.Second, "TCP_USER_TIMEOUT of accepted connections (Linux)")
	fs.DurationVar(&o.tcpWriteTimeout, "tcp-write-timeout", 2*time.Second, "deadline for writing each frame to a client; 0 means none (mesh peers always get 30s)")
	fs.StringVar(&o.acmeDirectoryURL, "acme-directory-url", defaultACMEDirectory, "openderp only: ACME directory URL used in letsencrypt cert mode, e.g. for a staging or private CA")
	fs.StringVar(&o.rateConfig, "rate-config", "", "path of a JSON file with per-client receive rate limits (PerClientRateLimitBytesPerSec, PerClientRateBurstBytes); reloaded on SIGHUP; experimental")
	fs.StringVar(&o.disallowAppNames, "disallow-app-names", "", "comma-separated AppNames whose clients are refused; mesh peers are exempt")
	fs.StringVar(&o.acmeEmail, "acme-email", "", "contact address of the ACME account; required by -certmode=gcp")
	fs.StringVar(&o.acmeEABKid, "acme-eab-kid", "", "ACME external account binding key ID; required by -certmode=gcp")
	fs.StringVar(&o.acmeEABKey, "acme-eab-key", "", "ACME external account binding HMAC key, base64 (URL-safe unpadded or standard); required by -certmode=gcp")
	fs.BoolVar(&o.acmeIPCerts, "acme-ip-certs", false, "with -certmode=letsencrypt, get short-lived certificates for the IP address each TLS connection arrived on (HTTP-01 on port 80, which must be reachable)")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "openderp only: host:port of a separate plain-HTTP listener serving only /metrics (Prometheus text) and /healthz, never /debug/; empty turns it off")
	fs.StringVar(&o.tlsMinVersion, "tls-min-version", "1.2", "openderp only: lowest TLS version the TLS listener accepts, \"1.2\" or \"1.3\"")
	fs.StringVar(&o.logFormat, "log-format", logFormatText, "openderp only: log line format, \"text\" (date, time and message, as the reference) or \"json\" (one object per line with level, message and attributes such as addr and key)")
	fs.StringVar(&o.logLevel, "log-level", "info", "openderp only: least severe log lines written: debug (adds a line per client connection), info, warn or error")
	fs.DurationVar(&o.shutdownGrace, "shutdown-grace", 0, "openderp only: on SIGTERM or SIGINT, report unhealthy on /healthz, stop accepting, send every client a Restarting frame and keep relaying this long before closing; 0 closes at once")
	// PROXY protocol (proxyproto.go)
	fs.StringVar(&o.proxyProtocolFrom, "proxy-protocol-from", "", "openderp only: comma-separated IP prefixes or addresses of TCP load balancers whose connections must start with a PROXY protocol v1 or v2 header naming the client; a header from any other address is refused; empty turns it off")
	fs.StringVar(&o.home, "home", "", "what / shows: empty for the built-in page, \"blank\" for an empty page, or an http:// or https:// URL to redirect to")
	registerLimitFlags(fs, &o.limits)
	registerSTUNLimitFlags(fs, &o.stunLimit)
	registerAdmissionFlags(fs, &o.admission)
	return o
}
