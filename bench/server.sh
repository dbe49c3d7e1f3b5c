#!/usr/bin/env bash
# The server's benchmark: three figures of gitfleet-server, each beside a
# limit measured in the same run, as rows of make bench's table
# (bench/lib.sh):
#
#   - tag -> advertised: a signed tag of a 256 MiB image becomes a release
#     advertised over MQTT, on embedded defaults, the build command aside
#     (BenchmarkTagToAdvertised), against SHA-256 of the image plus a synced
#     copy of it into the same data directory; goal <= 2x.
#   - status ingest: statuses of simulated devices (200 connections, 100,000
#     devices, QoS 1) through a real Mosquitto into SQLite and PostgreSQL,
#     and through the embedded broker into SQLite (BenchmarkIngest), against
#     the lower of two limits of the same run: what the same broker delivers
#     to a subscriber that only acknowledges, and what the database takes
#     without MQTT; goal >= 20,000 msg/s on a 2-core machine.
#   - device list p99 over HTTP with 100,000 devices, the worst of its
#     filters, and with four clients at once (api.BenchmarkListDevices100k),
#     against the goal of 50 ms.
#
# It starts what it needs — Mosquitto, PostgreSQL, an S3 server — through
# scripts/with-services.sh (which installs them when missing: run as root)
# and takes a few minutes. Environment: INGEST_STATUSES (default 50000).
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh disable=SC1091
source bench/lib.sh

statuses=${INGEST_STATUSES:-50000}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

echo "bench/server.sh: tag -> advertised, status ingest, device list (a few minutes)" >&2
scripts/with-services.sh bash -c "
set -e
go test -run '^\$' -count 1 -timeout 15m -bench 'BenchmarkTagToAdvertised' -benchtime 3x ./cmd/gitfleet-server/
go test -run '^\$' -count 1 -timeout 15m -bench 'BenchmarkIngest/mosquitto/(sqlite|postgres)\$' -benchtime ${statuses}x ./server/ingest/
go test -run '^\$' -count 1 -timeout 15m -bench 'BenchmarkIngest/embedded/sqlite\$' -benchtime ${statuses}x ./server/ingest/
go test -run '^\$' -count 1 -timeout 15m -bench 'BenchmarkListDevices100k' ./server/api/
" >"$out" 2>&1 || { cat "$out" >&2; echo "bench/server.sh: a benchmark failed" >&2; exit 1; }
grep '^Benchmark' "$out" >&2

# metric NAME UNIT: the value the benchmark line of NAME reports in UNIT.
metric() {
	awk -v name="$1" -v unit="$2" '
		{ n = $1; sub(/-[0-9]+$/, "", n) }
		n == name { for (i = 3; i < NF; i++) if ($(i + 1) == unit) { print $i; exit } }
	' "$out"
}
# need VALUE WHAT: VALUE, or a failure naming WHAT.
need() {
	[[ -n $1 ]] || { echo "bench/server.sh: no figure for $2 in the output" >&2; exit 1; }
	printf '%s' "$1"
}

tag_ns=$(need "$(metric BenchmarkTagToAdvertised ns/op)" "tag -> advertised")
limit=$(need "$(metric BenchmarkTagToAdvertised limit-s)" "hash + upload limit")
row "tag -> advertised, 256 MiB image (build aside)" "$(awk -v n="$tag_ns" 'BEGIN { printf "%.2f", n / 1e9 }')" s \
	"sha256 + synced copy" "$limit" "<= 2x"

# The ingest sits between two limits measured in the same run: what the
# broker delivers to a subscriber that only acknowledges, and what the
# database takes in batches without MQTT. The row names the lower.
for case in mosquitto/sqlite mosquitto/postgres embedded/sqlite; do
	broker=${case%/*} db=${case#*/}
	rate=$(need "$(metric "BenchmarkIngest/$case" msg/s)" "ingest $case")
	floor=$(need "$(metric "BenchmarkIngest/$case" broker-msg/s)" "broker floor $case")
	dbrate=$(need "$(metric "BenchmarkIngest/$case" db-rows/s)" "database floor $case")
	limit="$broker publish -> ack-only subscriber"
	if awk -v a="$dbrate" -v b="$floor" 'BEGIN { exit !(a < b) }'; then
		limit="$db alone, batches of 256" floor=$dbrate
	fi
	row "status ingest, $broker -> $db" "$(printf '%.0f' "$rate")" msg/s "$limit" "$(printf '%.0f' "$floor")" ">= 20000 msg/s"
done

worst=0 worst_name=
for q in unfiltered channel+online channel+version+state failing offline+unconfirmed label; do
	p99=$(need "$(metric "BenchmarkListDevices100k/$q" p99-ms)" "device list $q")
	if awk -v a="$p99" -v b="$worst" 'BEGIN { exit !(a > b) }'; then
		worst=$p99 worst_name=$q
	fi
done
row "device list p99, 100k devices (worst: $worst_name)" "$worst" ms "goal" 50 "<= 50 ms"
p99=$(need "$(metric "BenchmarkListDevices100k/channel+online-4clients" p99-ms)" "device list, 4 clients")
row "device list p99, 100k devices, 4 clients at once" "$p99" ms "goal" 50 "<= 50 ms"
