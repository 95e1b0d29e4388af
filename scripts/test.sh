#!/usr/bin/env bash
# Unit and integration tests with the race detector, for the main module and
# the interop modules (which prove compatibility with the reference:
# interop/ against tailscale.com v1.76.3, interop/latest against the newest
# release that builds with our Go).
set -euo pipefail
cd "$(dirname "$0")/.."

go test -race -count=1 ./...
for mod in interop interop/latest; do
	[ -f "$mod/go.mod" ] || continue
	(cd "$mod" && go test -race -count=1 ./...)
done
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
