#!/usr/bin/env bash
# fuzz.sh DURATION: runs every Fuzz target of the module for DURATION each.
set -euo pipefail
d=${1:-1m}
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
    echo "fuzz: $pkg $f for $d"
    go test -run '^$' -fuzz "^$f\$" -fuzztime "$d" "$pkg"
  done
done
