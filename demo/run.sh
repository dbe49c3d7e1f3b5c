#!/usr/bin/env bash
# The offline release round trip on a fresh machine: keys for the four TUF
# roles, a trust root, a signed bundle of two images, verification as a
# device would do it, and the refusals that protect a device.
# Everything happens in a temp dir that is removed at the end.
set -euo pipefail

cd "$(dirname "$0")/.."
gitfleet="$PWD/bin/gitfleet"
work=$(mktemp -d /tmp/gitfleet-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "keys for the TUF roles (the targets key is encrypted)"
export GITFLEET_KEY_PASSPHRASE="demo passphrase"
"$gitfleet" keys generate --role root --algorithm ecdsa-p256
"$gitfleet" keys generate --role targets --encrypt
"$gitfleet" keys generate --role snapshot
"$gitfleet" keys generate --role timestamp

step "a trust root that devices pin"
"$gitfleet" trust init --root-pub root.pub --targets-pub targets.pub \
  --snapshot-pub snapshot.pub --timestamp-pub timestamp.pub --sign-key root.key

step "two images: a 64 MiB root filesystem and an 8 MiB boot partition"
head -c 64M /dev/urandom > rootfs.img
head -c 8M /dev/urandom > boot.img

step "a signed bundle, with Git provenance, in both forms"
"$gitfleet" bundle create -f acme-1.4.0.gfb --product acme-gateway --version v1.4.0 --counter 14 \
  --device-type acme-gw-v2 --image rootfs=rootfs.img --image boot=boot.img,slot=boot \
  --key targets.key --tag v1.4.0 --commit "$(printf '%040x' 1)" --objects objects
"$gitfleet" bundle inspect acme-1.4.0.gfb
find objects -type f | sort

step "verify as an acme-gw-v2 device running counter 13 would"
"$gitfleet" bundle verify acme-1.4.0.gfb --root root.json --device-type acme-gw-v2 --installed-counter 13

step "refusals (each must fail)"
refuse() {
  if "$gitfleet" "$@"; then echo "UNEXPECTED: accepted" >&2; exit 1; fi
}
cp acme-1.4.0.gfb tampered.gfb
printf '\x00' | dd of=tampered.gfb bs=1 seek=$((40 * 1024 * 1024)) conv=notrunc status=none
refuse bundle verify tampered.gfb --root root.json
refuse bundle verify acme-1.4.0.gfb --root root.json --installed-counter 15
refuse bundle verify acme-1.4.0.gfb --root root.json --device-type acme-gw-v1
head -c 1000000 acme-1.4.0.gfb > truncated.gfb
refuse bundle verify truncated.gfb --root root.json
refuse bundle verify acme-1.4.0.gfb --pub snapshot.pub

step "done: every refusal above was one line naming what was wrong"
