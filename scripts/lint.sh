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

for mod in . interop interop/latest bench/compare bench/compare/servers/benchserver deploy/check; do
	[ -f "$mod/go.mod" ] || continue
	echo "== vet + staticcheck ($mod)"
	# interop/latest is built with the reference's DERP WebSocket client
	# compiled in, as scripts/test.sh does.
	tags=""
	[ "$mod" = interop/latest ] && tags=ts_debug_websockets
	(cd "$mod" && go vet -tags "$tags" ./... &&
		go run "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}" -tags "$tags" ./...)
done
