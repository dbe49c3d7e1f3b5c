#!/usr/bin/env bash
# make bench: gitfleet's figures beside the physical limits measured in the
# same run, on the same image, as ratios. Never a pass/fail timing: a table.
#
# The image is the peer benchmark's (../shared/bench/peers): the first
# SIZE_MIB MiB of the AES-128-CTR keystream, deterministic and incompressible.
#
# Environment: SIZE_MIB (default 256), RUNS (default 3), KEEP=1 keeps the work dir;
# BENCH_ROWS collects the summary rows (bench/lib.sh).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
source bench/lib.sh
gitfleet="$root/bin/gitfleet"
SIZE_MIB=${SIZE_MIB:-256}
RUNS=${RUNS:-3}
for tool in openssl sha256sum /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing: apt-get install -y openssl coreutils time" >&2; exit 1; }
done

work=$(mktemp -d /tmp/gitfleet-bench.XXXXXX)
[[ ${KEEP:-} == 1 ]] || trap 'rm -rf "$work"' EXIT
cd "$work"

image() { # image FILE MIB
  head -c "$(($2 << 20))" /dev/zero | openssl enc -aes-128-ctr -K 000102030405060708090a0b0c0d0e0f -iv 0 2>/dev/null > "$1"
}
image img "$SIZE_MIB"
if [[ $SIZE_MIB == 256 ]]; then
  want=7b1cdf37ab805f8d595e0d6cce738804f64ecfaecb362170f1e9a1fc1add4201
  [[ $(sha256sum img | cut -d' ' -f1) == "$want" ]] || { echo "bench: image digest differs from the peer bench's" >&2; exit 1; }
fi
image small 64

export GITFLEET_KEY_PASSPHRASE=bench
for r in root targets snapshot timestamp; do "$gitfleet" keys generate --role "$r" >/dev/null; done
"$gitfleet" trust init --root-pub root.pub --targets-pub targets.pub --snapshot-pub snapshot.pub \
  --timestamp-pub timestamp.pub --sign-key root.key >/dev/null
create="'$gitfleet' bundle create --product bench --version 1.0.0 --device-type bench --key targets.key"
bash -c "$create -f small.gfb --image rootfs=small" >/dev/null 2>&1

# measure NAME CMD: RUNS timed runs; records the median wall time and the
# largest max RSS.
declare -A wall rss
measure() {
  local name=$1 cmd=$2 i t=() r=0
  for ((i = 0; i < RUNS; i++)); do
    /usr/bin/time -f '%e %M' -o time.out bash -c "$cmd" >/dev/null 2>&1 || { echo "bench: $name failed: $cmd" >&2; exit 1; }
    read -r e m < time.out
    t+=("$e")
    ((m > r)) && r=$m
  done
  wall[$name]=$(printf '%s\n' "${t[@]}" | sort -n | sed -n "$(((RUNS + 1) / 2))p")
  rss[$name]=$r
}

measure sha256sum "sha256sum img"
measure openssl "openssl sha256 img"
measure cat "cat img > /dev/null"
measure create "$create -f b.gfb --image rootfs=img"
measure verify "'$gitfleet' bundle verify b.gfb --root root.json"
measure stream "cat b.gfb | '$gitfleet' bundle verify - --root root.json"
measure verify64 "'$gitfleet' bundle verify small.gfb --root root.json"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
mibs() { awk -v s="$1" -v n="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "-" }'; }
hash=${wall[openssl]}

printf '\ngitfleet bundle benchmark: %d MiB image, %d runs (median wall, max RSS), %s\n' "$SIZE_MIB" "$RUNS" "$(date -u +%FT%TZ)"
printf '%s\n' "$(nproc) CPU, $(uname -r), Go $(go env GOVERSION), $(openssl version | cut -d' ' -f1-2)"
{
  echo "figure|wall s|MiB/s|max RSS MiB|limit|x limit"
  echo "sha256sum (coreutils)|${wall[sha256sum]}|$(mibs "${wall[sha256sum]}" "$SIZE_MIB")|$((rss[sha256sum] / 1024))|-|-"
  echo "openssl sha256 = hash limit|$hash|$(mibs "$hash" "$SIZE_MIB")|$((rss[openssl] / 1024))|-|1.00"
  echo "cat > /dev/null = read limit|${wall[cat]}|$(mibs "${wall[cat]}" "$SIZE_MIB")|$((rss[cat] / 1024))|-|-"
  echo "bundle create (hash + write)|${wall[create]}|$(mibs "${wall[create]}" "$SIZE_MIB")|$((rss[create] / 1024))|openssl sha256|$(ratio "${wall[create]}" "$hash")"
  echo "bundle verify (file)|${wall[verify]}|$(mibs "${wall[verify]}" "$SIZE_MIB")|$((rss[verify] / 1024))|openssl sha256|$(ratio "${wall[verify]}" "$hash")"
  echo "bundle verify - (stream read)|${wall[stream]}|$(mibs "${wall[stream]}" "$SIZE_MIB")|$((rss[stream] / 1024))|openssl sha256|$(ratio "${wall[stream]}" "$hash")"
  echo "bundle verify, 64 MiB image|${wall[verify64]}|$(mibs "${wall[verify64]}" 64)|$((rss[verify64] / 1024))|RSS of $SIZE_MIB MiB verify|$(ratio "${rss[verify64]}" "${rss[verify]}")"
} | column -t -s '|'
echo
echo "goal: verify and stream read within 1.2x the hash limit; RSS flat in image size (last row's RSS ratio near 1)"

row "bundle verify (file), 256 MiB" "${wall[verify]}" s "openssl sha256 (hash limit)" "$hash" "<= 1.2x"
row "bundle verify - (stream read)" "${wall[stream]}" s "openssl sha256 (hash limit)" "$hash" "<= 1.2x"
row "bundle create" "${wall[create]}" s "openssl sha256 (hash limit)" "$hash" "-"
row "bundle verify peak RSS, 64 MiB vs 256 MiB image" "$((rss[verify64] / 1024))" MiB "RSS at 256 MiB" "$((rss[verify] / 1024))" "flat (~1.00x)"
