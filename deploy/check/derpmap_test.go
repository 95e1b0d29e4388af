package check

import (
	"bytes"
	"testing"

	"github.com/openderp/openderp/derpmap"
)

// TestSampleDERPMaps decodes the sample DERP maps with the relay's own
// derpmap package and checks what a region needs.
func TestSampleDERPMaps(t *testing.T) {
	for _, rel := range []string{"derpmap.json", "compose/derpmap.json"} {
		m, err := derpmap.Decode(bytes.NewReader(readDeploy(t, rel)))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		if len(m.Regions) == 0 {
			t.Errorf("%s: no regions", rel)
		}
		for id, r := range m.Regions {
			if r.RegionID != id {
				t.Errorf("%s: region key %d holds RegionID %d", rel, id, r.RegionID)
			}
			if id < 900 || id > 999 {
				t.Errorf("%s: region %d outside the private range 900-999", rel, id)
			}
			if len(r.DERPNodes()) < 2 {
				t.Errorf("%s: region %d has %d DERP nodes; the samples show a meshed region", rel, id, len(r.DERPNodes()))
			}
			for _, n := range r.Nodes {
				if n.RegionID != id || n.HostName == "" || n.Name == "" {
					t.Errorf("%s: node %+v", rel, n)
				}
			}
		}
	}
}
