#!/usr/bin/env bash
# bench/fleet.sh: the fleet simulator (gitfleet-sim) against a real
# Mosquitto and a real gitfleet-server, started here on loopback, each with
# a configuration of this script's own. Never a pass/fail timing: rows for
# the `make bench` table (bench/lib.sh), each beside the limit or peer
# measured in the same run where there is one.
#
#   1. the broker's limit: the same number of devices storm statuses into a
#      bare subscriber (the server's own MQTT client, counting), no server;
#   2. gitfleet-server starts; the devices connect; v1.0.0 is tagged and
#      pushed; the rollout goes through its waves on confirmed boots (a
#      FLEET_FAIL fraction of devices fails its health check and rolls back);
#   3. the devices storm statuses into the server, timed until its API shows
#      the last one of every device; the API is probed all along.
#
# Environment: FLEET_DEVICES (default 10000), FLEET_FAIL (0.01), FLEET_STORM
# (statuses per device, 5), FLEET_DATABASE (a postgres:// DSN; default
# SQLite in the server's data dir), FLEET_BIN (a directory with
# gitfleet-server and gitfleet-sim; default: built from this tree), KEEP=1
# keeps the work dir, FLEET_SIM_FLAGS adds flags to the second simulator run
# (e.g. --pprof 127.0.0.1:6060).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
source bench/lib.sh
devices=${FLEET_DEVICES:-10000}
fail=${FLEET_FAIL:-0.01}
storm=${FLEET_STORM:-5}
wave_duration=1

for tool in mosquitto mosquitto_passwd git python3; do
  command -v "$tool" >/dev/null || { echo "bench/fleet: $tool is missing: apt-get install -y mosquitto git python3" >&2; exit 1; }
done
# Each device holds a connection, at the broker and here.
ulimit -n $((devices * 2 + 20000)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if (($(ulimit -n) < devices + 1000)); then
  echo "bench/fleet: $devices devices need $((devices + 1000)) open files in Mosquitto and in the simulator; the limit is $(ulimit -n) and cannot be raised here (ulimit -Hn; raising it takes CAP_SYS_RESOURCE)" >&2
  exit 1
fi

work=$(mktemp -d /tmp/gitfleet-fleet.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ ${KEEP:-} == 1 ]] && echo "bench/fleet: kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
say() { printf 'bench/fleet: %s\n' "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

bin=${FLEET_BIN:-$work/bin}
[[ -n ${FLEET_BIN:-} ]] || go build -o "$bin/" ./cmd/gitfleet-server ./cmd/gitfleet-sim
sim=$bin/gitfleet-sim

# Mosquitto: one listener per 20,000 devices, since Linux gives a client
# address about 28,000 ephemeral ports per destination; devices take the
# listeners in turn. Devices connect without a password and the ACL limits
# each to its own topics by client id (%c); the server has an account.
listeners=$(((devices + 19999) / 20000))
brokers=()
{
  [[ $(id -u) == 0 ]] && echo "user root"
  echo "persistence false"
  echo "sys_interval 1"
  echo "max_queued_messages 1000000"
  # As docs/operating-at-scale.md configures a fleet's broker: the server
  # acknowledges a message once it is stored and stores what it holds in
  # batches, so with Mosquitto's default of 20 unacknowledged messages a
  # batch held a few messages and each cost a transaction.
  echo "max_inflight_messages 2000"
  echo "allow_anonymous true"
  echo "password_file $work/mqtt-passwords"
  echo "acl_file $work/mqtt-acl"
  for ((i = 0; i < listeners; i++)); do
    port=$(free_port)
    echo "listener $port 127.0.0.1"
    echo "max_connections -1"
    brokers+=("tcp://127.0.0.1:$port")
  done
} > "$work/mosquitto.conf"
broker_list=$(IFS=,; echo "${brokers[*]}")
mqtt_password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
echo "$mqtt_password" > "$work/mqtt-password"
mosquitto_passwd -c -b "$work/mqtt-passwords" gitfleet-server "$mqtt_password"
cat > "$work/mqtt-acl" <<ACL
# Devices: no account; their client id is their device id.
topic read gitfleet/v1/+/channels/#
pattern readwrite gitfleet/v1/+/devices/%c/#

user gitfleet-server
topic readwrite gitfleet/v1/#
topic read \$SYS/#
ACL
mosquitto -c "$work/mosquitto.conf" > "$work/mosquitto.log" 2>&1 &
mosquitto_pid=$!
pids+=("$mosquitto_pid")
for _ in $(seq 100); do
  python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', ${brokers[0]##*:}), 1)" 2>/dev/null && break
  sleep 0.1
done

# The firmware repository: a gitfleet.yaml whose build writes a 64 KiB
# image, and a fleet.yaml promoting v1.0.0 (not tagged yet) in four waves.
git_() { git -C "$work/firmware" -c user.name=bench -c user.email=bench@example.com "$@"; }
mkdir -p "$work/firmware"
cat > "$work/firmware/gitfleet.yaml" <<'YAML'
product: sim-firmware
device_types: [sim-board]
build:
  command: ./build.sh
images:
  - {name: rootfs, path: out/rootfs.img, slot: rootfs}
YAML
cat > "$work/firmware/build.sh" <<'SH'
#!/bin/sh
set -e
mkdir -p out
head -c 65536 /dev/urandom > out/rootfs.img
SH
chmod +x "$work/firmware/build.sh"
cat > "$work/firmware/fleet.yaml" <<YAML
fleet: sim
channels:
  production:
    release: v1.0.0
    devices: {device_types: [sim-board]}
    policy: {waves: [1, 10, 50, 100], wave_duration: ${wave_duration}s, max_failure_rate: 0.1, min_confirmed: 10}
YAML
git init -q --bare -b main "$work/firmware.git"
git init -q -b main "$work/firmware"
git_ remote add origin "$work/firmware.git"
git_ add -A && git_ commit -q -m "firmware" && git_ push -q origin main
cat > "$work/release.sh" <<SH
#!/bin/sh
git -C "$work/firmware" tag -a -m "release \$1" "\$1" && git -C "$work/firmware" push -q origin "\$1"
SH
chmod +x "$work/release.sh"

http=$(free_port)
cat > "$work/server.yaml" <<YAML
fleet: sim
data_dir: $work/server
http: {listen: 127.0.0.1:$http}
${FLEET_DATABASE:+database: $FLEET_DATABASE}
mqtt: {external: {broker: ${brokers[0]}, username: gitfleet-server, password_file: $work/mqtt-password}}
git: {url: file://$work/firmware.git, poll: 1s}
YAML
"$bin/gitfleet-server" --config "$work/server.yaml" 2> "$work/server.log" &
server_pid=$!
pids+=("$server_pid")
for _ in $(seq 100); do [[ -s $work/server/api-token ]] && break; sleep 0.1; done
[[ -s $work/server/api-token ]] || { say "the server did not start; its log:"; tail -20 "$work/server.log" >&2; exit 1; }

observer=(--mqtt-user gitfleet-server --mqtt-password-file "$work/mqtt-password" --broker "$broker_list" --broker-pid "$mosquitto_pid"
  --root "$work/server/keys/root.json" --devices "$devices")

say "1/2: $devices devices storm $storm statuses each into a bare subscriber: the broker's limit"
"$sim" "${observer[@]}" --fleet peer --storm "$storm" --peer -o json > "$work/peer.json"

say "2/2: $devices devices on gitfleet-server: v1.0.0 rolls out through 4 waves, $fail of the devices fail; then the status storm"
"$sim" "${observer[@]}" --fleet sim --server "http://127.0.0.1:$http" --token-file "$work/server/api-token" --server-pid "$server_pid" \
  --fail "$fail" --version 1.0.0 --release-cmd "$work/release.sh v1.0.0" --wave-duration "${wave_duration}s" \
  --storm "$storm" ${FLEET_SIM_FLAGS:-} -o json > "$work/fleet.json"

# The rows: jq-free, with python3 reading the two JSON results.
python3 - "$work/peer.json" "$work/fleet.json" "$devices" "$work/server.log" > "$work/rows" <<'PY'
import json, sys
peer, fleet, n = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3])
ro, st, srv, api = fleet.get("rollout") or {}, fleet.get("storm") or {}, fleet.get("server") or {}, fleet.get("api") or {}
pst = peer.get("storm") or {}
def row(*f): print("\t".join(str(x) for x in f))
row(f"fleet: devices held ({n} started)", fleet["held"] - 2, "devices", "-", "-", ">= 100000 at FLEET_DEVICES=100000")
row("fleet: status ingest into the server", round(st.get("ingest_per_s", 0)), "msg/s", "Mosquitto to a bare subscriber", round(pst.get("ingest_per_s", 0)), ">= 20000")
row(f"fleet: tag to all confirmed, {n} devices, less wave waits", round(ro.get("excluding_wave_wait_s", 0), 1), "s", "-", "-", "<= 60 at 10000")
row(f"fleet: tag to rollout {ro.get('state', '?')}, with wave waits", round(ro.get("elapsed_s", 0), 1), "s", "-", "-", "-")
row("fleet: server CPU over the run", round(srv.get("cpu_cores", 0), 2), "cores", "Mosquitto CPU", round((fleet.get("broker") or {}).get("cpu_cores", 0), 2), "-")
row("fleet: server RSS peak", round(srv.get("rss_peak_mib", 0)), "MiB", "-", "-", "-")
# The API's latency twice: as the simulator's prober sees it, sharing the
# saturated CPUs with 10,000 devices, and as the server measured it
# (request to answer, from its access log).
served = {"channel": [], "devices": []}
for line in open(sys.argv[4]):
    if '"http request"' not in line:
        continue
    try:
        r = json.loads(line)
    except ValueError:
        continue
    key = {"/api/v1/channels/{name}": "channel", "/api/v1/devices": "devices"}.get(r.get("route"))
    if key and r.get("status") == 200:
        served[key].append(r["duration"] / 1e6)
def quantile(v, q):
    v = sorted(v)
    return v[min(int(q * len(v)), len(v) - 1)] if v else 0
for name, key in (("channel status", "channel"), ("device page", "devices")):
    l = api.get(key) or {}
    row(f"fleet: API {name} p99 under load, at the prober", round(l.get("p99_ms", 0), 1), "ms", "its p50", round(l.get("p50_ms", 0), 1), "-")
    row(f"fleet: API {name} p99 under load, at the server", round(quantile(served[key], 0.99), 1), "ms", "its p50", round(quantile(served[key], 0.5), 1), "-")
row("fleet: simulator memory per device", round(fleet.get("per_device_kib", 0), 1), "KiB", "-", "-", "-")
PY
while IFS=$'\t' read -r figure value unit ref refv goal; do
  row "$figure" "$value" "$unit" "$ref" "$refv" "$goal"
done < "$work/rows"
