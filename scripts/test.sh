#!/usr/bin/env bash
# Unit and integration tests with the race detector, for the main module and
# the interop module (which proves wire compatibility with the reference).
set -euo pipefail
cd "$(dirname "$0")/.."

go test -race -count=1 ./...
if [ -f interop/go.mod ]; then
	(cd interop && go test -race -count=1 ./...)
fi
