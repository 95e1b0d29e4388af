package derpmap

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
)

// CertPinPrefix starts a Node.CertName that pins a certificate by hash.
const CertPinPrefix = "sha256-raw:"

// CertPin returns the Node.CertName that pins the certificate with DER
// encoding der: CertPinPrefix and the lowercase hex SHA-256 of der.
func CertPin(der []byte) string {
	sum := sha256.Sum256(der)
	return CertPinPrefix + hex.EncodeToString(sum[:])
}

// Map is a DERP map: the set of regions a client may use.
type Map struct {
	// HomeParams, if non-nil, changes how clients pick their home region.
	HomeParams *HomeParams `json:",omitempty"`

	// Regions holds every region by its RegionID. IDs need not be
	// contiguous. It is encoded as an object with decimal string keys and
	// as null when nil.
	Regions map[int]*Region

	// OmitDefaultRegions asks clients to use only these regions and not
	// Tailscale's defaults. It only means something when Regions is
	// non-nil. Its JSON key is lowercase on purpose: that is the key the
	// reference uses.
	OmitDefaultRegions bool `json:"omitDefaultRegions,omitempty"`
}

// HomeParams tunes how clients choose their home region.
type HomeParams struct {
	// RegionScore multiplies a region's measured latency when a client
	// ranks regions: below 1 favours the region, above 1 penalises it.
	// A missing region counts as 1 and scores <= 0 are ignored. A non-nil
	// empty map resets all scores.
	RegionScore map[int]float64 `json:",omitempty"`
}

// Region is a set of DERP nodes that share clients: nodes in one region
// mesh with each other, so a client reaches every peer homed in the region
// through any one of them.
type Region struct {
	// RegionID is the region's unique positive ID. IDs 900 to 999 are
	// reserved for privately run relays.
	RegionID int

	// RegionCode is a short name such as "nyc", used in probe names.
	RegionCode string

	// RegionName is a human-readable name such as "New York City".
	RegionName string

	// Latitude and Longitude optionally locate the region, in degrees.
	Latitude  float64 `json:",omitempty"`
	Longitude float64 `json:",omitempty"`

	// Avoid tells clients not to choose this region as their home; they
	// still use it to reach peers homed there.
	Avoid bool `json:",omitempty"`

	// Nodes lists the region's nodes in priority order. Clients connect to
	// the first usable one.
	Nodes []*Node
}

// Node is one DERP (and usually STUN) server.
type Node struct {
	// Name uniquely names the node across all regions, such as "1b". It
	// is not a hostname.
	Name string

	// RegionID is the ID of the region the node belongs to.
	RegionID int

	// HostName is the node's DNS name. It is the TLS server name, the
	// default certificate name and, unless IPv4 or IPv6 say otherwise,
	// what is resolved to dial it.
	HostName string

	// CertName, if set, is the name the TLS certificate must carry when
	// it differs from HostName. Alternatively it pins the certificate:
	// CertPinPrefix followed by the lowercase hex SHA-256 of the
	// certificate's DER encoding (see CertPin), which suits a server
	// known only by its IP address with a self-signed certificate.
	CertName string `json:",omitempty"`

	// IPv4 selects the IPv4 address to dial: empty means resolve HostName,
	// an IPv4 literal means dial that address, and any other value
	// (conventionally "none") disables IPv4 for this node.
	IPv4 string `json:",omitempty"`

	// IPv6 is like IPv4, for IPv6.
	IPv6 string `json:",omitempty"`

	// STUNPort is the STUN UDP port: 0 means 3478, -1 means the node does
	// not serve STUN.
	STUNPort int `json:",omitempty"`

	// STUNOnly marks a node that only serves STUN; DERP clients skip it.
	STUNOnly bool `json:",omitempty"`

	// DERPPort is the HTTPS port for DERP; 0 means 443.
	DERPPort int `json:",omitempty"`

	// InsecureForTests disables TLS certificate verification. It is meant
	// for tests only.
	InsecureForTests bool `json:",omitempty"`

	// STUNTestIP overrides the STUN destination IP in tests.
	STUNTestIP string `json:",omitempty"`

	// CanPort80 says the node answers plain HTTP on port 80, which
	// clients use for captive-portal detection.
	CanPort80 bool `json:",omitempty"`
}

// Default ports used when a Node leaves them zero.
const (
	DefaultDERPPort = 443
	DefaultSTUNPort = 3478
)

// RegionIDs returns the IDs of the map's regions in increasing order.
func (m *Map) RegionIDs() []int {
	if m == nil {
		return nil
	}
	ids := make([]int, 0, len(m.Regions))
	for id := range m.Regions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Node returns the node called name and its region, or nil, nil if no
// region has such a node.
func (m *Map) Node(name string) (*Node, *Region) {
	if m == nil {
		return nil, nil
	}
	for _, id := range m.RegionIDs() {
		r := m.Regions[id]
		if n := r.Node(name); n != nil {
			return n, r
		}
	}
	return nil, nil
}

// Node returns the region's node called name, or nil.
func (r *Region) Node(name string) *Node {
	if r == nil {
		return nil
	}
	for _, n := range r.Nodes {
		if n != nil && n.Name == name {
			return n
		}
	}
	return nil
}

// DERPNodes returns the region's nodes that serve DERP (those not marked
// STUNOnly), in order.
func (r *Region) DERPNodes() []*Node {
	if r == nil {
		return nil
	}
	var out []*Node
	for _, n := range r.Nodes {
		if n != nil && !n.STUNOnly {
			out = append(out, n)
		}
	}
	return out
}

// Port returns the node's DERP port, DERPPort or 443 when that is zero.
func (n *Node) Port() int {
	if n.DERPPort != 0 {
		return n.DERPPort
	}
	return DefaultDERPPort
}

// Validate checks what clients rely on: every region is stored under its
// own RegionID, node names are unique, and each node names its region and
// has a HostName.
func (m *Map) Validate() error {
	if m == nil {
		return nil
	}
	names := make(map[string]int)
	for _, id := range m.RegionIDs() {
		r := m.Regions[id]
		if r == nil {
			return fmt.Errorf("derpmap: region %d is null", id)
		}
		if r.RegionID != id {
			return fmt.Errorf("derpmap: region stored under %d has RegionID %d", id, r.RegionID)
		}
		for i, n := range r.Nodes {
			if n == nil {
				return fmt.Errorf("derpmap: region %d: node %d is null", id, i)
			}
			if n.RegionID != id {
				return fmt.Errorf("derpmap: node %q is in region %d but has RegionID %d", n.Name, id, n.RegionID)
			}
			if n.HostName == "" {
				return fmt.Errorf("derpmap: node %q has no HostName", n.Name)
			}
			if prev, dup := names[n.Name]; dup {
				return fmt.Errorf("derpmap: node name %q used in regions %d and %d", n.Name, prev, id)
			}
			names[n.Name] = id
		}
	}
	return nil
}
