package prober_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openderp/openderp/derpmap"
	"github.com/openderp/openderp/prober"
	"github.com/openderp/openderp/prober/probertest"
)

func TestRegionFilter(t *testing.T) {
	node := func(name string, region int) *derpmap.Node {
		return &derpmap.Node{Name: name, RegionID: region, HostName: name + ".test", IPv4: "192.0.2.1", IPv6: "none"}
	}
	src := &mapSource{m: &derpmap.Map{Regions: map[int]*derpmap.Region{
		1:  probertest.Region(1, "one", node("1a", 1)),
		2:  probertest.Region(2, "two", node("2a", 2)),
		12: probertest.Region(12, "2", node("x", 12)), // a code that looks like region 2's ID
		// A duplicate name outside the chosen region goes unnoticed.
		3: probertest.Region(3, "three", node("2a", 3)),
	}}}
	for _, tt := range []struct {
		region  string
		want    []string
		wantErr string
	}{
		{"two", []string{"derp/two/2a/tls", "derp/two/2a/udp"}, ""},
		{"1", []string{"derp/one/1a/tls", "derp/one/1a/udp"}, ""},
		{"2", []string{"derp/2/x/tls", "derp/2/x/udp", "derp/two/2a/tls", "derp/two/2a/udp"}, ""}, // code "2" and ID 2 both match
		{"TWO", nil, "not found"},
		{"", nil, "duplicate nodes"},
	} {
		p := prober.New()
		dp, err := prober.DERP(p, "https://example.invalid/", prober.WithFetch(src.fetch), prober.WithRegion(tt.region),
			prober.WithTLSProbing(time.Hour), prober.WithSTUNProbing(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		err = dp.ProbeMap().Probe(t.Context())
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("region %q: %v; want %q", tt.region, err, tt.wantErr)
			}
		} else if got := dp.ProbeNames(); err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("region %q: %v, %v; want %v", tt.region, got, err, tt.want)
		}
		p.Close()
	}
}
