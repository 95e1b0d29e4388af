module github.com/openderp/openderp/bench/compare

go 1.26.0

require (
	github.com/openderp/openderp v0.0.0
	github.com/openderp/openderp/bench/compare/servers/benchserver v0.0.0
)

require (
	github.com/coder/websocket v1.8.14 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/time v0.16.0 // indirect
)

replace (
	github.com/openderp/openderp => ../..
	github.com/openderp/openderp/bench/compare/servers/benchserver => ./servers/benchserver
)
