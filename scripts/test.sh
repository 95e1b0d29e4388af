#!/usr/bin/env bash
# Unit and integration tests with the race detector, for the main module and
# the interop module (which proves wire compatibility with the reference).
set -euo pipefail
cd "$(dirname "$0")/.."

go test -race -count=1 ./...
if [ -f interop/go.mod ]; then
	(cd interop && go test -race -count=1 ./...)
fi

# Deployment files (deploy/): Kubernetes, Prometheus, Dockerfile, compose,
# systemd and Grafana checks, in their own module so the relay's module
# stays lean. Runs in well under a minute once the module cache is warm.
if [ -f deploy/check/go.mod ]; then
	(cd deploy/check && go vet ./... && go test -count=1 ./...)
fi
