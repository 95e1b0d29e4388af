#!/usr/bin/env bash
# Unit and integration tests with the race detector, for the main module and
# the interop module (which proves wire compatibility with the reference).
set -euo pipefail
cd "$(dirname "$0")/.."

go test -race -count=1 ./...
if [ -f interop/go.mod ]; then
	(cd interop && go test -race -count=1 ./...)
fi
# The side-by-side benchmark harness: a smoke run (seconds) against our own
# server only; `make bench-compare` runs the real comparison.
if [ -f bench/compare/go.mod ]; then
	(cd bench/compare && go test -race -count=1 ./...)
fi
