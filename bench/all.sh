#!/usr/bin/env bash
# make bench: every benchmark of the project, each printing its own detail,
# then one table of all their figures beside the limit or peer measured in
# the same run (bench/lib.sh). Never a pass/fail timing.
#
# Environment: BENCH (space-separated subset of: bundle agent server fleet).
set -euo pipefail

cd "$(dirname "$0")/.."
source bench/lib.sh
export BENCH_ROWS
BENCH_ROWS=$(mktemp /tmp/gitfleet-bench-rows.XXXXXX)
trap 'rm -f "$BENCH_ROWS"' EXIT

declare -A script=([bundle]=bench/run.sh [agent]=bench/agent.sh [server]=bench/server.sh [fleet]=bench/fleet.sh)
failed=()
for b in ${BENCH:-bundle agent server fleet}; do
  [[ -n ${script[$b]:-} ]] || { echo "bench: unknown benchmark $b (bundle agent server fleet)" >&2; exit 2; }
  printf '\n===== %s: %s =====\n' "$b" "${script[$b]}"
  "${script[$b]}" || failed+=("$b")
done

printf '\n===== gitfleet benchmark summary, %s, %s CPU, load %s =====\n' \
  "$(date -u +%FT%TZ)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
print_rows "$BENCH_ROWS"
if ((${#failed[@]})); then
  echo "bench: failed: ${failed[*]}" >&2
  exit 1
fi
