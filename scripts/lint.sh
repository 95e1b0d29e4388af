#!/usr/bin/env bash
# Static checks: formatting, go vet and a pinned staticcheck, for the main
# module and (when present) the interop modules.
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK_VERSION=${STATICCHECK_VERSION:-v0.8.2}

bad=$(gofmt -l $(git ls-files --cached --others --exclude-standard '*.go'))
if [ -n "$bad" ]; then
	echo "gofmt wants to rewrite:" >&2
	echo "$bad" >&2
	exit 1
fi

for mod in . interop interop/latest bench/compare bench/compare/servers/benchserver; do
	[ -f "$mod/go.mod" ] || continue
	echo "== vet + staticcheck ($mod)"
	(cd "$mod" && go vet ./... && go run "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}" ./...)
done
