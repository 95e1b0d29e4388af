// Command v1.104.5 serves Tailscale's DERP server as released in
// tailscale.com v1.104.5 (package derp/derpserver), for the side-by-side
// benchmarks (see bench/compare). It needs Go 1.27.3.
package main

import (
	"net/http"

	"github.com/openderp/openderp/bench/compare/servers/benchserver"
	"tailscale.com/derp/derpserver"
	"tailscale.com/types/key"
)

func main() {
	benchserver.Main(benchserver.Impl{
		Name: "v1.104.5",
		Handler: func() (http.Handler, []byte) {
			s := derpserver.New(key.NewNode(), func(string, ...any) {})
			return derpserver.Handler(s), s.MetaCert()
		},
	})
}
