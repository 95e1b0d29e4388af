package derpmap

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// testMap is a realistic map: a public-style region, a private one on a
// custom port with IPv6 disabled, and home parameters.
func testMap() *Map {
	return &Map{
		HomeParams: &HomeParams{RegionScore: map[int]float64{1: 0.8, 2: 1.5}},
		Regions: map[int]*Region{
			1: {
				RegionID:   1,
				RegionCode: "nyc",
				RegionName: "New York City",
				Latitude:   40.7128,
				Longitude:  -74.006,
				Nodes: []*Node{
					{Name: "1a", RegionID: 1, HostName: "derp1a.example.net", STUNOnly: true, STUNPort: 3478},
					{Name: "1b", RegionID: 1, HostName: "derp1b.example.net", IPv4: "192.0.2.11", IPv6: "2001:db8::11", CanPort80: true},
					{Name: "1c", RegionID: 1, HostName: "derp1c.example.net", IPv4: "192.0.2.12", IPv6: "2001:db8::12", CanPort80: true},
				},
			},
			2: {
				RegionID:   2,
				RegionCode: "fra",
				RegionName: "Frankfurt",
				Avoid:      true,
				Nodes: []*Node{
					{Name: "2a", RegionID: 2, HostName: "derp2a.example.net", CertName: "sni.example.net", STUNPort: -1},
				},
			},
			900: {
				RegionID:   900,
				RegionCode: "home",
				RegionName: "Home Lab",
				Nodes: []*Node{
					{Name: "900a", RegionID: 900, HostName: "derp.home.example", IPv4: "192.0.2.10", IPv6: "none", DERPPort: 8443, InsecureForTests: true, STUNTestIP: "127.0.0.1"},
				},
			},
		},
		OmitDefaultRegions: true,
	}
}

func TestGolden(t *testing.T) {
	got, err := json.MarshalIndent(testMap(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	const golden = "testdata/derpmap.json"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("encoding differs from %s:\n%s", golden, got)
	}
	m, err := Decode(bytes.NewReader(want))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, testMap()) {
		t.Errorf("Decode(golden) = %+v; want %+v", m, testMap())
	}
	if err := m.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
}

func TestEncodeOmitEmpty(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"empty map", &Map{}, `{"Regions":null}`},
		{"empty regions", &Map{Regions: map[int]*Region{}}, `{"Regions":{}}`},
		{"omit default", &Map{OmitDefaultRegions: true}, `{"Regions":null,"omitDefaultRegions":true}`},
		{"home params reset", &Map{HomeParams: &HomeParams{}}, `{"HomeParams":{},"Regions":null}`},
		{"region", &Region{}, `{"RegionID":0,"RegionCode":"","RegionName":"","Nodes":null}`},
		{"node", &Node{}, `{"Name":"","RegionID":0,"HostName":""}`},
		{"node full", &Node{Name: "n", RegionID: 3, HostName: "h", CertName: "c", IPv4: "none", IPv6: "::1", STUNPort: -1, STUNOnly: true, DERPPort: 1, InsecureForTests: true, STUNTestIP: "1.2.3.4", CanPort80: true},
			`{"Name":"n","RegionID":3,"HostName":"h","CertName":"c","IPv4":"none","IPv6":"::1","STUNPort":-1,"STUNOnly":true,"DERPPort":1,"InsecureForTests":true,"STUNTestIP":"1.2.3.4","CanPort80":true}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("Marshal = %s; want %s", got, tt.want)
			}
		})
	}
}

func TestDecodeReferenceExample(t *testing.T) {
	// The example map from the reference's documentation, as a control
	// server would send it.
	const js = `{
  "Regions": {
    "900": {
      "RegionID": 900,
      "RegionCode": "home",
      "RegionName": "Home Lab",
      "Nodes": [
        {
          "Name": "900a",
          "RegionID": 900,
          "HostName": "derp.example.net",
          "IPv4": "192.0.2.10",
          "IPv6": "none",
          "DERPPort": 8443
        }
      ]
    }
  },
  "omitDefaultRegions": true
}`
	m, err := Decode(strings.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	n, r := m.Node("900a")
	if n == nil || r.RegionCode != "home" || n.Port() != 8443 || n.IPv6 != "none" || !m.OmitDefaultRegions {
		t.Errorf("decoded %+v / %+v / %+v", m, r, n)
	}
}

func TestHelpers(t *testing.T) {
	m := testMap()
	if got, want := m.RegionIDs(), []int{1, 2, 900}; !slices.Equal(got, want) {
		t.Errorf("RegionIDs() = %v; want %v", got, want)
	}
	tests := []struct {
		name, region string
	}{
		{"1a", "nyc"}, {"1c", "nyc"}, {"2a", "fra"}, {"900a", "home"}, {"nope", ""},
	}
	for _, tt := range tests {
		n, r := m.Node(tt.name)
		if tt.region == "" {
			if n != nil || r != nil {
				t.Errorf("Node(%q) = %v, %v; want nil", tt.name, n, r)
			}
			continue
		}
		if n == nil || n.Name != tt.name || r.RegionCode != tt.region {
			t.Errorf("Node(%q) = %v, %v; want region %s", tt.name, n, r, tt.region)
		}
	}
	var names []string
	for _, n := range m.Regions[1].DERPNodes() {
		names = append(names, n.Name)
	}
	if want := []string{"1b", "1c"}; !slices.Equal(names, want) {
		t.Errorf("DERPNodes() = %v; want %v", names, want)
	}
	if p := m.Regions[1].Nodes[0].Port(); p != 443 {
		t.Errorf("Port() = %d; want 443", p)
	}
	var nilMap *Map
	if nilMap.RegionIDs() != nil || nilMap.Validate() != nil {
		t.Error("nil map helpers misbehave")
	}
	if n, r := nilMap.Node("x"); n != nil || r != nil {
		t.Error("nil map Node found something")
	}
	var nilRegion *Region
	if nilRegion.Node("x") != nil || nilRegion.DERPNodes() != nil {
		t.Error("nil region helpers misbehave")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Map)
		want   string
	}{
		{"ok", func(*Map) {}, ""},
		{"null region", func(m *Map) { m.Regions[5] = nil }, "region 5 is null"},
		{"wrong key", func(m *Map) { m.Regions[2].RegionID = 3 }, "has RegionID 3"},
		{"null node", func(m *Map) { m.Regions[2].Nodes = append(m.Regions[2].Nodes, nil) }, "node 1 is null"},
		{"node region", func(m *Map) { m.Regions[2].Nodes[0].RegionID = 1 }, `node "2a" is in region 2`},
		{"no host", func(m *Map) { m.Regions[2].Nodes[0].HostName = "" }, "no HostName"},
		{"dup name", func(m *Map) { m.Regions[2].Nodes[0].Name = "1b" }, `"1b" used in regions 1 and 2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testMap()
			tt.mutate(m)
			err := m.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v; want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v; want error containing %q", err, tt.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	golden, err := os.ReadFile("testdata/derpmap.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add([]byte(`{"Regions":null}`))
	f.Add([]byte(`{"Regions":{"1":{"RegionID":1,"Nodes":[{"Name":"a"}]}},"HomeParams":{"RegionScore":{"1":2}}}`))
	f.Add([]byte(`{"Regions":{"x":{}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(bytes.NewReader(b))
		if err != nil {
			return
		}
		// Whatever decodes must survive the helpers and re-encode to
		// something that decodes to the same map.
		_ = m.Validate()
		for _, id := range m.RegionIDs() {
			m.Regions[id].DERPNodes()
		}
		enc, err := json.Marshal(m)
		if err != nil {
			return // e.g. NaN cannot come from JSON, but be lenient
		}
		m2, err := Decode(bytes.NewReader(enc))
		if err != nil {
			t.Fatalf("re-decoding %s: %v", enc, err)
		}
		enc2, err := json.Marshal(m2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip changed encoding:\n%s\n%s", enc, enc2)
		}
	})
}
