#!/usr/bin/env bash
# Unit and integration tests with the race detector, for the main module and
# the interop modules (which prove compatibility with the reference:
# interop/ against tailscale.com v1.76.3, interop/latest against the newest
# release that builds with our Go).
set -euo pipefail
cd "$(dirname "$0")/.."

go test -race -count=1 ./...
(cd interop && go test -race -count=1 ./...)
# The newest reference compiles its DERP WebSocket client in only with this
# tag; without it the WebSocket cases skip.
(cd interop/latest && go test -race -count=1 -tags ts_debug_websockets ./...)
# The side-by-side benchmark harness: a smoke run (seconds) against our own
# server only; `make bench-compare` runs the real comparison.
if [ -f bench/compare/go.mod ]; then
	(cd bench/compare && go test -race -count=1 ./...)
fi
