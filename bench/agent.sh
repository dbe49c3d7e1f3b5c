#!/usr/bin/env bash
# The agent's install benchmark: gitfleet-agent installs the peer benchmark's
# signed 256 MiB image from a local bundle into a file slot, flipping a
# file-backed U-Boot environment, in the same run and table as dd, the
# SHA-256 limits and — when they are installed — RAUC, SWUpdate and Mender
# (../shared/bench/peers/install-bench.sh, given gitfleet as its custom row).
#
# Environment: RUNS (default 3), PEER_BENCH (path of install-bench.sh),
# PEERS (rows; default: every peer that is installed).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
source bench/lib.sh
peer_bench=${PEER_BENCH:-$root/../shared/bench/peers/install-bench.sh}
[[ -f $peer_bench ]] || { echo "bench: no peer benchmark at $peer_bench (set PEER_BENCH)" >&2; exit 1; }
[[ $EUID == 0 ]] || { echo "bench: the peer benchmark needs root (loop devices, mount namespaces)" >&2; exit 1; }

CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o bin/ ./cmd/gitfleet ./cmd/gitfleet-agent

rows="dd-file dd-loop sha256sum openssl-sha256"
command -v rauc >/dev/null && rows+=" rauc"
command -v swupdate >/dev/null && rows+=" swupdate"
command -v mender >/dev/null && command -v mender-artifact >/dev/null && rows+=" mender"
export PEERS=${PEERS:-"$rows gitfleet"}
export CUSTOM_NAME=gitfleet
export CUSTOM_VERSION="gitfleet-agent $(git -C "$root" describe --always --dirty 2>/dev/null || echo devel)"
export CUSTOM_NOTE="bundle file; chunk-verified stream + read-back; flip via U-Boot env"
# Runs in the peer benchmark's work dir: a root, a bundle of its image signed
# by a fresh targets key, and an agent config over its slots and environment.
export CUSTOM_PREP="
set -e
cd \$W/custom
for r in root targets snapshot timestamp; do '$root/bin/gitfleet' keys generate --role \$r >/dev/null; done
'$root/bin/gitfleet' trust init --root-pub root.pub --targets-pub targets.pub --snapshot-pub snapshot.pub --timestamp-pub timestamp.pub --sign-key root.key
'$root/bin/gitfleet' bundle create -f b.gfb --product bench --version 1.0.0 --counter 1 --device-type ota-bench-device --image rootfs=\$IMG --key targets.key
echo bench-boot > boot_id
cat > agent.yaml <<YAML
device: {id: bench-1, type: ota-bench-device, fleet: bench, channel: bench}
data_dir: \$W/custom/data
trust: {root: \$W/custom/root.json}
slots:
  booted: A
  groups:
    A: {rootfs: \$SLOT_A}
    B: {rootfs: \$SLOT_B}
bootloader: {type: uboot, fw_env_config: \$FWCFG}
system: {boot_id_file: \$W/custom/boot_id, reboot_command: [\"true\"]}
YAML
"
# Each run starts from a fresh journal: the previous run left its update
# waiting for the reboot.
export CUSTOM_CMD="rm -rf \$W/custom/data && '$root/bin/gitfleet-agent' install --config \$W/custom/agent.yaml \$W/custom/b.gfb"
export CUSTOM_FLIP='[ "$(fw_printenv -c $FWCFG -n upgrade_available)" = 1 ] && [ "$(fw_printenv -c $FWCFG -n gitfleet_slot)" = B ]'

table=$(mktemp /tmp/gitfleet-agent-bench.XXXXXX)
trap 'rm -f "$table"' EXIT
OUT=$table bash "$peer_bench"
mib() { awk -v s="$1" 'BEGIN { printf "%.1f", s / 1048576 }'; }
size=$(mib "$(stat -c %s bin/gitfleet-agent)")
printf '\ngitfleet-agent binary: %s MiB stripped (static, -trimpath -ldflags "-s -w"), goal <= 8 MiB\n' "$size"

# The floor under size and memory: bench/libfloor links the libraries the
# agent cannot do without (paho over TLS, net/http, go-tuf and sigstore,
# protobuf, go-yaml) and none of the agent, built the same way. Its peak
# RSS is the median of 3 runs against a root and nothing listening.
floor_dir=$(mktemp -d /tmp/gitfleet-libfloor.XXXXXX)
trap 'rm -f "$table"; rm -rf "$floor_dir"' EXIT
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$floor_dir/libfloor" ./bench/libfloor
(
  cd "$floor_dir"
  for r in root targets snapshot timestamp; do "$root/bin/gitfleet" keys generate --role $r >/dev/null; done
  "$root/bin/gitfleet" trust init --root-pub root.pub --targets-pub targets.pub --snapshot-pub snapshot.pub --timestamp-pub timestamp.pub --sign-key root.key >/dev/null
  printf 'broker: tls://127.0.0.1:1\nurl: https://127.0.0.1:1/\nca: %s/none.pem\nroot: %s/root.json\n' "$floor_dir" "$floor_dir" >libfloor.yaml
)
floor_size=$(mib "$(stat -c %s "$floor_dir/libfloor")")
for run in 1 2 3; do
  /usr/bin/time -f %M -o "$floor_dir/rss.$run" "$floor_dir/libfloor" "$floor_dir/libfloor.yaml" >/dev/null 2>&1 ||
    { echo "bench: bench/libfloor failed" >&2; exit 1; }
done
floor_rss=$(tail -qn1 "$floor_dir"/rss.* | sort -n | sed -n 2p | awk '{ printf "%.1f", $1 / 1024 }')
printf 'libraries alone (bench/libfloor): %s MiB stripped, peak RSS %s MiB\n' "$floor_size" "$floor_rss"

# Peak RSS against image size: the same install of a 64 MiB and a 1 GiB
# image (pseudo-random, file slots of the image's size, the plain-file
# bootloader), median of 3 runs each, signed by the floor's targets key.
install_rss() { # install_rss MIB: peak RSS in MiB of installing an image of MIB MiB
  local d=$floor_dir/image-$1
  mkdir -p "$d/slots"
  head -c "$(($1 << 20))" /dev/urandom >"$d/rootfs.img"
  truncate -s "$(($1 << 20))" "$d/slots/A.img" "$d/slots/B.img"
  "$root/bin/gitfleet" bundle create -f "$d/b.gfb" --product bench --version 1.0.0 --counter 1 \
    --device-type ota-bench-device --image rootfs="$d/rootfs.img" --key "$floor_dir/targets.key" >/dev/null 2>"$d/create.log" ||
    { cat "$d/create.log" >&2; return 1; }
  rm "$d/rootfs.img"
  echo bench-boot >"$d/boot_id"
  cat >"$d/agent.yaml" <<YAML
device: {id: bench-1, type: ota-bench-device, fleet: bench, channel: bench}
data_dir: $d/data
trust: {root: $floor_dir/root.json}
slots:
  booted: A
  groups:
    A: {rootfs: $d/slots/A.img}
    B: {rootfs: $d/slots/B.img}
bootloader: {type: file, file: $d/bootenv}
system: {boot_id_file: $d/boot_id, reboot_command: ["true"]}
YAML
  for run in 1 2 3; do
    rm -rf "$d/data" "$d/bootenv"
    /usr/bin/time -f %M -o "$d/rss.$run" "$root/bin/gitfleet-agent" install --config "$d/agent.yaml" "$d/b.gfb" \
      >/dev/null 2>"$d/install.log" || { tail -5 "$d/install.log" >&2; return 1; }
  done
  tail -qn1 "$d"/rss.* | sort -n | sed -n 2p | awk '{ printf "%.1f", $1 / 1024 }'
  rm -rf "$d"
}
rss_small=$(install_rss 64)
rss_large=$(install_rss 1024)
printf 'agent install peak RSS: %s MiB for a 64 MiB image, %s MiB for 1 GiB\n' "$rss_small" "$rss_large"

# The summary rows: the agent's install against the limits and each peer of
# the same run. col ROW N: the Nth column of the peer table's row.
col() { awk -F'|' -v r="$1" -v n="$2" '{ gsub(/ /, "", $2) } $2 == r { v = $(n + 1); gsub(/ /, "", v); print v }' "$table"; }
ours=$(col gitfleet 3)
dd=$(col dd-file 3) hash=$(col openssl-sha256 3)
limit=$(awk -v a="$dd" -v b="$hash" 'BEGIN { print (a > b ? a : b) }')
row "agent install 256 MiB (file slot, read-back, env flip)" "$ours" s "max(dd conv=fsync, openssl sha256)" "$limit" "<= 1.3x"
declare -A peer_goal=([rauc]="<= 0.5x")
for peer in rauc swupdate mender; do
  [[ -n $(col "$peer" 3) ]] && row "agent install 256 MiB" "$ours" s "$peer" "$(col "$peer" 3)" "${peer_goal[$peer]:--}"
  [[ -n $(col "$peer" 8) ]] && row "agent install peak RSS" "$(col gitfleet 8)" MiB "$peer" "$(col "$peer" 8)" -
done
row "agent install peak RSS" "$(col gitfleet 8)" MiB "goal" 12 "<= 1.0x"
row "agent install peak RSS" "$(col gitfleet 8)" MiB "libraries alone, peak RSS" "$floor_rss" -
row "agent install peak RSS, 1 GiB image" "$rss_large" MiB "64 MiB image" "$rss_small" "constant in image size"
row "agent binary, stripped, static" "$size" MiB "goal" 8 "<= 1.0x"
row "agent binary, stripped, static" "$size" MiB "libraries alone (bench/libfloor)" "$floor_size" -
