// Command openderp serves this repository's DERP server, for the
// side-by-side benchmarks (see bench/compare).
package main

import (
	"crypto/tls"
	"net"
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
		// derper's TLS listener: it completes handshakes itself and parks
		// finished connections without buffers (no limits set here).
		TLSListener: func(ln net.Listener, cfg *tls.Config) net.Listener {
			cfg = cfg.Clone()
			cfg.NextProtos = []string{"http/1.1"}
			return derphttp.NewTLSLimitListener(ln, derphttp.Limits{}, derphttp.TLSOptions{Config: cfg})
		},
	})
}
