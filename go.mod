module github.com/openderp/openderp

go 1.26.0

require (
	github.com/coder/websocket v1.8.14
	golang.org/x/crypto v0.58.0
	golang.org/x/time v0.16.0
)

require golang.org/x/sys v0.49.0
