#!/usr/bin/env bash
# Runs every fuzz target of the main module for FUZZTIME (default 10s) each.
# Targets are found by name, so a new FuzzXxx function is picked up without
# editing this script.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-10s}
count=0
while IFS= read -r file; do
	dir=$(dirname "$file")
	for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)\(' "$file" | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/'); do
		echo "== fuzz ./$dir $target ($FUZZTIME)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "${FUZZMINTIME:-5s}" -parallel "${FUZZPARALLEL:-1}" "./$dir"
		count=$((count + 1))
	done
done < <(git ls-files --cached --others --exclude-standard '*_test.go' | grep -v '^interop/' | sort)
echo "fuzz: ran $count targets"
