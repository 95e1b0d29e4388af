#!/usr/bin/env bash
# Unit and integration tests with the race detector, for the main module and
# the interop modules (which prove compatibility with the reference:
# interop/ against tailscale.com v1.76.3, interop/latest against the newest
# release that builds with our Go).
set -euo pipefail
cd "$(dirname "$0")/.."

go test -race -count=1 ./...
# The tailnet tests (real tsnet nodes through our relay, tailnet_*_test.go)
# are built only without -race: under the race detector the reference's
# userspace WireGuard and netstack crawl (0.3 MB/s on two busy cores, against
# 2-3 MB/s without the race detector on the same machine, 15-33 MB/s when it
# is quiet) and its tsnet Close can hang in WireGuard's BindClose.
# Our relay code on that path is race-tested by the main module's tests.
# The newest reference compiles its DERP WebSocket client in only with the
# ts_debug_websockets tag; without it the WebSocket cases skip.
(cd interop && go test -race -count=1 ./... && go test -count=1 -run '^TestTailnet' ./...)
(cd interop/latest &&
	go test -race -count=1 -tags ts_debug_websockets ./... &&
	go test -count=1 -tags ts_debug_websockets -run '^TestTailnet' ./...)
# The side-by-side benchmark harness: a smoke run (seconds) against our own
# server only; `make bench-compare` runs the real comparison.
if [ -f bench/compare/go.mod ]; then
	(cd bench/compare && go test -race -count=1 ./...)
fi

# Deployment files (deploy/): Kubernetes, Prometheus, Dockerfile, compose,
# systemd and Grafana checks, in their own module so the relay's module
# stays lean. Runs in well under a minute once the module cache is warm.
if [ -f deploy/check/go.mod ]; then
	(cd deploy/check && go vet ./... && go test -count=1 ./...)
fi
