package prober

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/openderp/openderp/derpmap"
)

// mapCacheMaxAge is how long a fetched DERP map stands in for one that
// cannot be fetched because of a transport error.
const mapCacheMaxAge = 10 * time.Minute

// DERPOpt configures DERP.
type DERPOpt func(*DERPProber)

// WithMeshProbing probes packet delivery between every ordered pair of
// nodes of each region, every interval.
func WithMeshProbing(interval time.Duration) DERPOpt {
	return func(d *DERPProber) { d.meshInterval = interval }
}

// WithSTUNProbing probes each node's STUN service over IPv4 and IPv6
// every interval.
func WithSTUNProbing(interval time.Duration) DERPOpt {
	return func(d *DERPProber) { d.stunInterval = interval }
}

// WithTLSProbing checks each node's TLS certificate every interval.
func WithTLSProbing(interval time.Duration) DERPOpt {
	return func(d *DERPProber) { d.tlsInterval = interval }
}

// WithBandwidthProbing sends size bytes between every ordered pair of
// nodes of each region every interval and records how long it took.
func WithBandwidthProbing(interval time.Duration, size int64) DERPOpt {
	return func(d *DERPProber) { d.bwInterval, d.bwSize = interval, size }
}

// WithQueuingDelayProbing adds a continuous queuing-delay probe for every
// ordered pair of nodes of each region (a node with itself included):
// packetsPerSecond small packets a second from one node to the other,
// recording each packet's delay, and counting as dropped a packet not
// received within packetTimeout. A rate of 0 or less adds none.
func WithQueuingDelayProbing(packetsPerSecond int, packetTimeout time.Duration) DERPOpt {
	return func(d *DERPProber) { d.qdRate, d.qdTimeout = packetsPerSecond, packetTimeout }
}

// WithRegion limits probing to the region whose RegionCode, or whose
// RegionID in decimal, equals region exactly. An empty region probes
// every region.
func WithRegion(region string) DERPOpt {
	return func(d *DERPProber) { d.region = region }
}

// WithMeshKey makes every DERP client of the mesh, bandwidth and
// queuing-delay probes present meshKey (64 hex digits), so that servers
// treat them as mesh peers: they pass client verification and rate
// limits. An empty key presents none.
func WithMeshKey(meshKey string) DERPOpt {
	return func(d *DERPProber) { d.meshKey = meshKey }
}

// WithTLSConfig sets the base TLS configuration of the TLS, mesh and
// bandwidth probes, for instance to trust a private root (RootCAs). The
// server name is always the node's HostName; a node's CertName, when set,
// is what the certificate is verified against (a sha256-raw: CertName
// pins it).
func WithTLSConfig(cfg *tls.Config) DERPOpt {
	return func(d *DERPProber) { d.tlsConfig = cfg }
}

// WithFetch replaces how the DERP map is loaded (derpmap.Fetch by
// default).
func WithFetch(fetch func(ctx context.Context, src string) (*derpmap.Map, error)) DERPOpt {
	return func(d *DERPProber) { d.fetch = fetch }
}

// DERPProber keeps a Prober's per-node DERP probes in line with a DERP
// map. Its ProbeMap class, registered with Prober.Run, re-reads the map on
// every run and adds and removes probes as nodes come and go.
type DERPProber struct {
	// set once by DERP
	p            *Prober
	src          string
	fetch        func(ctx context.Context, src string) (*derpmap.Map, error)
	tlsConfig    *tls.Config
	meshInterval time.Duration
	stunInterval time.Duration
	tlsInterval  time.Duration
	bwInterval   time.Duration
	bwSize       int64
	bwTUN        *tunBandwidth // nil unless WithBandwidthTUN
	qdRate       int
	qdTimeout    time.Duration
	region       string
	meshKey      string
	bw           bwPayloads
	crls         crlCache

	mu        sync.Mutex
	lastMap   *derpmap.Map       // guarded by mu; nil until a fetch succeeds
	lastFetch time.Time          // guarded by mu
	nodes     map[string]*nodeAt // guarded by mu; from lastMap, by node name
	probes    map[string]*Probe  // guarded by mu; the probes this DERPProber made
}

// nodeAt is a node and the region it is in.
type nodeAt struct {
	n *derpmap.Node
	r *derpmap.Region
}

// DERP returns a DERPProber that adds probes to p for the nodes of the
// DERP map at src: an https://, http:// or file:// URL, or "local" for the
// map of the tailscaled on this machine. Which probes it makes is set by
// opts; a probe kind with no positive interval is not made.
func DERP(p *Prober, src string, opts ...DERPOpt) (*DERPProber, error) {
	if src != "local" {
		u, err := url.Parse(src)
		if err != nil {
			return nil, fmt.Errorf("prober: DERP map URL: %w", err)
		}
		switch u.Scheme {
		case "http", "https", "file":
		default:
			return nil, fmt.Errorf("prober: DERP map source %q: want an http://, https:// or file:// URL or \"local\"", src)
		}
	}
	d := &DERPProber{
		p:      p,
		src:    src,
		fetch:  derpmap.Fetch,
		probes: make(map[string]*Probe),
	}
	for _, o := range opts {
		o(d)
	}
	return d, nil
}

// ProbeMap returns the class of the DERP map probe, which derpprobe
// registers as "derpmap-probe". Each run fetches the map and reconciles
// the per-node probes with it.
func (d *DERPProber) ProbeMap() ProbeClass {
	return ProbeClass{Class: "derp_map", Probe: d.probeMap}
}

func (d *DERPProber) probeMap(ctx context.Context) error {
	m, err := d.fetch(ctx, d.src)
	if err != nil {
		var ue *url.Error
		d.mu.Lock()
		cached := d.lastMap != nil && d.p.now().Sub(d.lastFetch) < mapCacheMaxAge
		d.mu.Unlock()
		if cached && errors.As(err, &ue) {
			d.p.logf("Error while fetching DERP map, using cached one: %v", err)
			return nil
		}
		return err
	}
	nodes := make(map[string]*nodeAt)
	for _, id := range m.RegionIDs() {
		r := m.Regions[id]
		if r == nil || !d.wantRegion(r) {
			continue
		}
		for _, n := range r.Nodes {
			if n == nil {
				continue
			}
			if prev, dup := nodes[n.Name]; dup {
				return fmt.Errorf("derpmap has duplicate nodes: %q in regions %d and %d", n.Name, prev.r.RegionID, r.RegionID)
			}
			// STUN-only nodes are probed over DERP all the same.
			n.STUNOnly = false
			nodes[n.Name] = &nodeAt{n: n, r: r}
		}
	}

	d.mu.Lock()
	d.lastMap, d.lastFetch, d.nodes = m, d.p.now(), nodes
	d.mu.Unlock()

	if d.region != "" && len(nodes) == 0 {
		return fmt.Errorf("region %q not found in the DERP map", d.region)
	}
	wanted := d.wanted(m)
	d.mu.Lock()
	var stale []*Probe
	for name, pr := range d.probes {
		if _, ok := wanted[name]; !ok {
			stale = append(stale, pr)
			delete(d.probes, name)
		}
	}
	for name, w := range wanted {
		if _, ok := d.probes[name]; ok {
			continue
		}
		d.p.logf("adding DERP %s probe for %s", w.pc.Class, name)
		d.probes[name] = d.p.Run(name, w.interval, w.labels, w.pc)
	}
	d.mu.Unlock()
	for _, pr := range stale {
		d.p.logf("removing DERP probe %s", pr.Name())
		pr.Close()
	}
	return nil
}

// wantRegion reports whether region r is to be probed.
func (d *DERPProber) wantRegion(r *derpmap.Region) bool {
	return d.region == "" || r.RegionCode == d.region || strconv.Itoa(r.RegionID) == d.region
}

// wantedProbe is a probe the current map calls for.
type wantedProbe struct {
	interval time.Duration
	labels   Labels
	pc       ProbeClass
}

// wanted computes the probe set of m, by probe name.
func (d *DERPProber) wanted(m *derpmap.Map) map[string]wantedProbe {
	out := make(map[string]wantedProbe)
	for _, id := range m.RegionIDs() {
		r := m.Regions[id]
		if r == nil || !d.wantRegion(r) {
			continue
		}
		for _, n := range r.Nodes {
			if n == nil {
				continue
			}
			labels := Labels{"region": r.RegionCode, "region_id": strconv.Itoa(r.RegionID), "hostname": n.HostName}
			prefix := "derp/" + r.RegionCode + "/" + n.Name + "/"
			if d.tlsInterval > 0 {
				out[prefix+"tls"] = wantedProbe{d.tlsInterval, labels, d.tlsClass(n)}
			}
			if d.stunInterval > 0 && n.STUNPort >= 0 {
				// Only addresses that parse get a probe: "none" and
				// other non-addresses mean the family is off.
				// See docs/compat.md#prober-udp.
				if ip, ok := nodeIP(n.IPv6, true); ok {
					out[prefix+"udp6"] = wantedProbe{d.stunInterval, labels, d.stunClass(ip, n.STUNPort, "ipv6")}
				}
				if ip, ok := nodeIP(n.IPv4, false); ok {
					out[prefix+"udp"] = wantedProbe{d.stunInterval, labels, d.stunClass(ip, n.STUNPort, "ipv4")}
				}
			}
			for _, to := range r.Nodes {
				if to == nil {
					continue
				}
				path := "mesh"
				if to.Name == n.Name {
					path = "single"
				}
				if d.meshInterval > 0 {
					pc := d.transferClass("derp_mesh", n.Name, to.Name, 0)
					pc.Labels = Labels{"derp_path": path}
					out[prefix+to.Name+"/mesh"] = wantedProbe{d.meshInterval, labels, pc}
				}
				if d.bwInterval > 0 && d.bwSize > 0 {
					var pc ProbeClass
					if d.bwTUN != nil {
						pc = d.tunBandwidthClass(n.Name, to.Name)
					} else {
						pc = d.transferClass("derp_bw", n.Name, to.Name, d.bwSize)
					}
					pc.Labels = Labels{"derp_path": path, "tcp_in_tcp": strconv.FormatBool(d.bwTUN != nil)}
					out[prefix+to.Name+"/bw"] = wantedProbe{d.bwInterval, labels, pc}
				}
				if d.qdRate > 0 {
					pc := d.qdClass(n.Name, to.Name)
					pc.Labels = Labels{"derp_path": path}
					out[prefix+to.Name+"/qd"] = wantedProbe{qdInterval, labels, pc}
				}
			}
		}
	}
	return out
}

// nodeIP parses a node's IPv4 or IPv6 field.
func nodeIP(s string, v6 bool) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Is6() != v6 || ip.Zone() != "" {
		return netip.Addr{}, false
	}
	return ip, true
}

// node returns the node called name in the latest map.
func (d *DERPProber) node(name string) (*derpmap.Node, *derpmap.Region, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	na := d.nodes[name]
	if na == nil {
		return nil, nil, fmt.Errorf("could not find derp node %q in the DERP map", name)
	}
	return na.n, na.r, nil
}

// ProbeNames returns the names of the probes the DERPProber currently
// keeps, sorted.
func (d *DERPProber) ProbeNames() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var names []string
	for n := range d.probes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
