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
	acmeDirectoryURL     string

	limits connLimits // see limits.go
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
// same names, types and defaults, plus -acme-directory-url.
func registerFlags(fs *flag.FlagSet, d flagDefaults) *options {
	o := new(options)
	fs.BoolVar(&o.dev, "dev", false, "development mode on localhost: listen on :3340, ephemeral key, no config file")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.StringVar(&o.addr, "a", ":443", "main listen address: \":port\", \"ip:port\" or \"[ipv6]:port\" (no IP means every interface); HTTPS when the port is 443 or -certmode=manual, plain HTTP otherwise")
	fs.IntVar(&o.httpPort, "http-port", 80, "plain-HTTP port used alongside HTTPS (captive-portal check, ACME, redirects), on the IP of -a; -1 turns it off")
	fs.IntVar(&o.stunPort, "stun-port", 3478, "UDP port of the STUN server, on the IP of -a")
	fs.StringVar(&o.configPath, "c", "", "path of the JSON config file holding the server private key (created if missing)")
	fs.StringVar(&o.certMode, "certmode", "letsencrypt", "where the TLS certificate comes from: letsencrypt or manual")
	fs.StringVar(&o.certDir, "certdir", d.certDir, "certificate directory: ACME cache in letsencrypt mode, <hostname>.crt and <hostname>.key in manual mode")
	fs.StringVar(&o.hostname, "hostname", defaultHostname, "TLS host name: the only name ACME may issue for, and the name manual certificates must cover")
	fs.BoolVar(&o.runSTUN, "stun", true, "run the STUN server on the IP of -a")
	fs.BoolVar(&o.runDERP, "derp", true, "run the DERP relay; false keeps STUN, bootstrap DNS and probes but answers /derp with 404")
	fs.StringVar(&o.meshPSKFile, "mesh-psk-file", d.meshPSKFile, "file with the mesh pre-shared key (64+ hex digits, surrounding whitespace ignored); empty means no meshing")
	fs.StringVar(&o.meshWith, "mesh-with", "", "comma-separated host names of the region nodes to mesh with; this node's own name may be listed")
	fs.StringVar(&o.bootstrapDNS, "bootstrap-dns-names", "", "comma-separated host names resolved and published at /bootstrap-dns")
	fs.StringVar(&o.unpublishedDNS, "unpublished-bootstrap-dns-names", "", "comma-separated host names answered at /bootstrap-dns?q= but never listed; name/txtname reads a 0-100 rollout percentage from the TXT record of txtname")
	fs.BoolVar(&o.verifyClients, "verify-clients", false, "admit only node keys that the local tailscaled knows")
	fs.StringVar(&o.verifyClientURL, "verify-client-url", "", "admission controller URL asked about each client; empty disables")
	fs.BoolVar(&o.verifyClientFailOpen, "verify-client-url-fail-open", true, "admit clients when the admission controller cannot be reached")
	fs.Float64Var(&o.acceptConnLimit, "accept-connection-limit", math.Inf(+1), "new TLS connections accepted per second (token bucket rate)")
	fs.IntVar(&o.acceptConnBurst, "accept-connection-burst", math.MaxInt, "token bucket burst for new TLS connections")
	fs.DurationVar(&o.tcpKeepAlive, "tcp-keepalive-time", 10*time.Minute, "TCP keepalive period of accepted connections")
	fs.DurationVar(&o.tcpUserTimeout, "tcp-user-timeout", 15*time.Second, "TCP_USER_TIMEOUT of accepted connections (Linux)")
	fs.StringVar(&o.acmeDirectoryURL, "acme-directory-url", defaultACMEDirectory, "ACME directory URL used in letsencrypt cert mode (openderp addition, e.g. for a staging or private CA)")
	registerLimitFlags(fs, &o.limits)
	return o
}
