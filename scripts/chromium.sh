#!/usr/bin/env bash
# Prints the path of a headless-capable Chromium, installing Debian's
# chromium package with apt-get when it is missing. Exits 3 when neither a
# browser nor apt-get (with root) is available, so tests can skip.
set -euo pipefail

for b in chromium chromium-browser; do
	if p=$(command -v "$b"); then
		echo "$p"
		exit 0
	fi
done
if ! command -v apt-get >/dev/null || [ "$(id -u)" != 0 ]; then
	echo "chromium not installed and apt-get unavailable (or not root)" >&2
	exit 3
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends chromium >&2
command -v chromium
