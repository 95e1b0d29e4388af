package derpmap_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/openderp/openderp/derpmap"
)

func ExampleFetch() {
	path, err := filepath.Abs("testdata/derpmap.json")
	if err != nil {
		log.Fatal(err)
	}
	m, err := derpmap.Fetch(context.Background(), "file://"+path)
	if err != nil {
		log.Fatal(err)
	}
	for _, id := range m.RegionIDs() {
		r := m.Regions[id]
		fmt.Println(id, r.RegionCode, len(r.DERPNodes()))
	}
	// Output:
	// 1 nyc 2
	// 2 fra 1
	// 900 home 1
}

func ExampleMap_Node() {
	f, err := os.Open("testdata/derpmap.json")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	m, err := derpmap.Decode(f)
	if err != nil {
		log.Fatal(err)
	}
	n, r := m.Node("900a")
	fmt.Println(r.RegionName, n.HostName, n.Port())
	// Output: Home Lab derp.home.example 8443
}
