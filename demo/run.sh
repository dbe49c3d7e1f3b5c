#!/usr/bin/env bash
# make demo: gitfleet end to end on one machine, on embedded defaults.
#
# A firmware Git repository (hil/example-firmware, with a fleet.yaml) whose
# release tags are SSH-signed; gitfleet-server with no broker, database or
# object store of its own to set up; three virtual boards running the real
# gitfleet-agent. Then: tag v1.0.0 and watch it roll out in waves, confirmed
# boot by confirmed boot; tag v1.1.0 and promote it with a commit to
# fleet.yaml; roll it back with `git revert`. Everything lives in one temp
# dir, removed at the end (KEEP=1 keeps it).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
bin=$root/bin
work=$(mktemp -d /tmp/gitfleet-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ ${KEEP:-} == 1 ]] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
git_() { git -C "$work/firmware" -c user.name="Release Manager" -c user.email=release@example.com \
  -c gpg.format=ssh -c user.signingkey="$work/release-key" "$@"; }

step "a firmware repository with a gitfleet.yaml and a fleet.yaml; release tags signed with an SSH key"
ssh-keygen -q -t ed25519 -N '' -C release@example.com -f "$work/release-key"
echo "release@example.com $(cat "$work/release-key.pub")" > "$work/allowed_signers"
mkdir -p "$work/firmware"
cp "$root/hil/example-firmware/"{gitfleet.yaml,build.sh,image-kind} "$work/firmware/"
cat > "$work/firmware/fleet.yaml" <<'YAML'
fleet: demo
channels:
  production:
    release: v1.0.0
    devices:
      device_types: [gitfleet-vboard]
    policy:
      waves: [34, 100]        # one board first, then the rest
      wave_duration: 5s
      max_failure_rate: 0.5
      min_confirmed: 1
YAML
# firmware.git is the hosting server's repository, firmware the release
# manager's clone.
git init -q --bare -b main "$work/firmware.git"
git init -q -b main "$work/firmware"
git_ remote add origin "$work/firmware.git"
git_ add -A && git_ commit -q -m "firmware 1.0.0" && git_ tag -s -m "release v1.0.0" v1.0.0
git_ push -q origin main v1.0.0
git_ log --oneline --decorate | cat

step "gitfleet-server on embedded defaults (broker, SQLite, objects), watching the repository"
http=$(free_port); mqtt=$(free_port)
cat > "$work/server.yaml" <<YAML
data_dir: $work/server
http: {listen: 127.0.0.1:$http}
mqtt: {embedded: {listen: 127.0.0.1:$mqtt}}
git:
  url: file://$work/firmware.git
  poll: 1s
  signatures: {method: ssh, keys: $work/allowed_signers}
YAML
"$bin/gitfleet-server" --config "$work/server.yaml" 2> "$work/server.log" &
pids+=($!)
for _ in $(seq 100); do [[ -s $work/server/api-token ]] && break; sleep 0.1; done
export GITFLEET_SERVER=http://127.0.0.1:$http GITFLEET_TOKEN=$(cat "$work/server/api-token")
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local t=$1 what=$2; shift 2
  for _ in $(seq $((t * 2))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "demo: $what did not happen in ${t}s; server log: $work/server.log" >&2; exit 1
}
wait_for 60 "the build of v1.0.0" "$bin/gitfleet" release show 1.0.0
"$bin/gitfleet" releases

step "three virtual boards running gitfleet-agent, each with its own broker account"
for i in 1 2 3; do
  "$bin/gitfleet-server" add-device --config "$work/server.yaml" "board-$i" > "$work/board-$i.password"
  "$bin/gitfleet-hil" vboard --dir "$work/board-$i" --agent "$bin/gitfleet-agent" --device-id "board-$i" \
    --fleet demo --channel production --root "$work/server/keys/root.json" \
    --broker "tcp://127.0.0.1:$mqtt" --mqtt-password-file "$work/board-$i.password" \
    --factory-version 0.9.0 --power-on > "$work/board-$i.log" 2>&1 &
  pids+=($!)
done

show() { "$bin/gitfleet" devices; echo; "$bin/gitfleet" rollout status --channel production; }
all_confirmed() { [[ $("$bin/gitfleet" devices --version "$1" --confirmed true -o json | grep -c '"id"') == 3 ]]; }

step "v1.0.0 rolls out: wave 1 (one board) must confirm a healthy boot before wave 2 starts"
for _ in $(seq 60); do
  show | sed 's/^/  /'; echo
  all_confirmed 1.0.0 && break
  sleep 2
done
all_confirmed 1.0.0 || { echo "demo: v1.0.0 did not reach every board" >&2; exit 1; }

step "release v1.1.0: tag it, then promote it to production with a commit to fleet.yaml"
echo "# 1.1.0" >> "$work/firmware/build.sh"
git_ commit -q -am "firmware 1.1.0" && git_ tag -s -m "release v1.1.0" v1.1.0
git_ push -q origin main v1.1.0
wait_for 60 "the build of v1.1.0" "$bin/gitfleet" release show 1.1.0
"$bin/gitfleet" promote 1.1.0 --channel production
git_ pull -q --ff-only origin main
git_ log --oneline -3 | cat
for _ in $(seq 60); do all_confirmed 1.1.0 && break; sleep 2; done
show
all_confirmed 1.1.0 || { echo "demo: v1.1.0 did not reach every board" >&2; exit 1; }

step "roll back: git revert the promotion commit; the boards go back to 1.0.0"
git_ revert --no-edit HEAD >/dev/null
git_ push -q origin main
git_ log --oneline -3 | cat
for _ in $(seq 60); do all_confirmed 1.0.0 && break; sleep 2; done
show
all_confirmed 1.0.0 || { echo "demo: the rollback did not reach every board" >&2; exit 1; }

step "done"
cat <<DONE_MSG
API:      $GITFLEET_SERVER/api/v1 (token: $work/server/api-token)
logs:     $work/server.log, $work/board-*.log
The demo stops everything and removes $work when it exits (KEEP=1 keeps it).
DONE_MSG
