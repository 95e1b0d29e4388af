// Command openderp serves this repository's DERP server, for the
// side-by-side benchmarks (see bench/compare).
package main

import (
	"net/http"

	"github.com/openderp/openderp/bench/compare/servers/benchserver"
	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/key"
)

func main() {
	benchserver.Main(benchserver.Impl{
		Name: "openderp",
		Handler: func() (http.Handler, []byte) {
			s := derp.NewServer(key.NewNode(), func(string, ...any) {})
			return derphttp.Handler(s), s.MetaCert()
		},
	})
}
