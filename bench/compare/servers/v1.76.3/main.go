// Command v1.76.3 serves Tailscale's DERP server as released in
// tailscale.com v1.76.3, for the side-by-side benchmarks (see
// bench/compare).
package main

import (
	"net/http"

	"github.com/openderp/openderp/bench/compare/servers/benchserver"
	"tailscale.com/derp"
	"tailscale.com/derp/derphttp"
	"tailscale.com/types/key"
)

func main() {
	benchserver.Main(benchserver.Impl{
		Name: "v1.76.3",
		Handler: func() (http.Handler, []byte) {
			s := derp.NewServer(key.NewNode(), func(string, ...any) {})
			return derphttp.Handler(s), s.MetaCert()
		},
	})
}
