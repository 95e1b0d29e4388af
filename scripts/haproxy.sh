#!/usr/bin/env bash
# Prints the path of an HAProxy binary, installing Debian's haproxy package
# with apt-get when it is missing. Exits 3 when neither HAProxy nor apt-get
# (with root) is available, so tests can skip. The package's service is not
# started: tests run their own HAProxy on loopback.
set -euo pipefail

if p=$(command -v haproxy); then
	echo "$p"
	exit 0
fi
for p in /usr/sbin/haproxy /usr/local/sbin/haproxy; do
	if [ -x "$p" ]; then
		echo "$p"
		exit 0
	fi
done
if ! command -v apt-get >/dev/null || [ "$(id -u)" != 0 ]; then
	echo "haproxy not installed and apt-get unavailable (or not root)" >&2
	exit 3
fi
export DEBIAN_FRONTEND=noninteractive
# Keep the package's init scripts from starting a system-wide HAProxy.
policy=/usr/sbin/policy-rc.d
own_policy=
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod +x "$policy"
	own_policy=1
fi
trap '[ -z "$own_policy" ] || rm -f "$policy"' EXIT
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends haproxy >&2
if p=$(command -v haproxy); then
	echo "$p"
else
	echo /usr/sbin/haproxy
fi
