#!/usr/bin/env bash
# fuzz.sh BUDGET: runs every Fuzz target of the module for BUDGET each.
#
# BUDGET is go test's -fuzztime: a duration (1m) or a number of executions
# (5000x). CI uses a count: with a duration, Go 1.26's fuzzing coordinator can
# fail a target with a bare "context deadline exceeded" when the time runs out
# (golang/go#75804, fixed in Go 1.27). A duration run that fails with only that
# message, wrote no failing input and replays its corpus cleanly is reported
# as that race and passes; any other failure fails the run.
set -euo pipefail
budget=${1:-1m}
inputs() { if [[ -d $1 ]]; then find "$1" -type f | wc -l; else echo 0; fi; }
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
    echo "fuzz: $pkg $f for $budget"
    corpus="$dir/testdata/fuzz/$f"
    before=$(inputs "$corpus")
    out=$(mktemp)
    if go test -run '^$' -fuzz "^$f\$" -fuzztime "$budget" "$pkg" 2>&1 | tee "$out"; then
      rm -f "$out"
      continue
    fi
    after=$(inputs "$corpus")
    if [[ $budget != *x ]] && [[ $before == "$after" ]] &&
      grep -q '^    context deadline exceeded$' "$out" &&
      ! grep -q -e 'Failing input written' -e '^panic:' -e '--- FAIL: .*/' "$out" &&
      go test -run "^$f\$" "$pkg"; then
      echo "fuzz: $f stopped by the coordinator's deadline race (golang/go#75804); its corpus replays cleanly"
      rm -f "$out"
      continue
    fi
    rm -f "$out"
    exit 1
  done
done
