#!/usr/bin/env bash
# Creates what docker-compose.yml needs beside it: a mesh key and a small
# private CA with one certificate per relay (derp-a, derp-b), so that the
# relays and the prober trust each other inside the compose network.
# Run once: ./make-secrets.sh
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p certs
[ -f mesh.key ] || { umask 077; openssl rand -hex 32 > mesh.key; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
	-subj /CN=openderp-compose-ca -keyout certs/ca.key -out certs/ca.crt 2>/dev/null
for host in derp-a derp-b; do
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-subj "/CN=$host" -keyout "certs/$host.key" -out "certs/$host.csr" 2>/dev/null
	openssl x509 -req -in "certs/$host.csr" -CA certs/ca.crt -CAkey certs/ca.key -CAcreateserial \
		-days 825 -extfile <(printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n' "$host") \
		-out "certs/$host.crt" 2>/dev/null
	rm "certs/$host.csr"
done
rm -f certs/ca.key certs/ca.srl
# The relays run as uid 65532 and must read their key.
chmod 0644 certs/*.crt mesh.key certs/*.key
echo "wrote mesh.key and certs/"
