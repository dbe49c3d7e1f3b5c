#!/usr/bin/env bash
# make fuzz: run every fuzz target of the module for FUZZTIME each (default
# 20s), one after the other; stops at the first crasher, which go test
# writes under the package's testdata/fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-20s}
grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u | while read -r dir; do
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go | sed 's/^func //' | sort -u); do
    echo "== $dir $target"
    go test -run='^$' -fuzz="^$target\$" -fuzztime="$fuzztime" "$dir"
  done
done
