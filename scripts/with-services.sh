#!/usr/bin/env bash
# Usage: scripts/with-services.sh CMD [ARGS...]
#
# Runs CMD against real, throwaway instances of the services gitfleet's tests talk to: Mosquitto (a
# password listener and a mutual-TLS one), PostgreSQL and an S3 server (versitygw). It installs the
# Debian package of every program in internal/testenv/tools.txt that is missing, builds versitygw once
# into a cache outside the repository, starts each service on free loopback ports in one temporary
# directory, waits until each answers, exports where they are as GITFLEET_TEST_* variables (listed in
# scripts/README.md) and runs CMD. Whatever happens - CMD passes or fails, a service does not start,
# SIGINT, SIGTERM or SIGHUP - it stops what it started and removes the directory. It exits with CMD's
# status, or 128+N after signal N. Parallel runs do not meet: each has its own ports and directory.

# shellcheck disable=SC2317 # shellcheck 0.9 takes every function for unreachable after the last line's exit
set -euo pipefail

readonly versitygw_version=v1.8.0
readonly deadline=30 # seconds a service gets to answer
readonly s3_region=us-east-1

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cache=${GITFLEET_CACHE:-${HOME:?is not set: set it, or GITFLEET_CACHE}/.cache/gitfleet}
work=  # the temporary directory; every service keeps its files, and its log, in $work/NAME/
build= # versitygw's build directory while it is built

say() { printf 'with-services: %s\n' "$*" >&2; }
service() { printf 'with-services: %-10s %-8s %s\n' "$@" >&2; } # service NAME VERSION ADDRESSES
die() {
	say "$*"
	exit 1
}

# quietly CMD...: runs CMD, showing what it printed only if it fails.
quietly() {
	local out
	if ! out=$("$@" 2>&1); then
		printf '%s\n' "$out" >&2
		die "failed: $*"
	fi
}

# secret prints 32 random hex digits.
secret() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

# poll SECONDS CMD...: runs CMD every 50 ms until it succeeds (status 0) or SECONDS have passed (1).
poll() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < end)) || return 1
		sleep 0.05
	done
}

exited() { ! kill -0 "$1" 2>/dev/null; }

# await PID CMD...: polls CMD until it succeeds. It fails as soon as process PID has exited, or after
# $deadline seconds.
await() {
	local pid=$1
	shift
	if ! poll "$deadline" exited_or "$pid" "$@"; then
		say "no answer within $deadline s"
		return 1
	fi
	! exited "$pid"
}
exited_or() {
	local pid=$1
	shift
	exited "$pid" || "$@"
}

# stop_process PID: asks process PID to stop, kills it if it has not within 10 s, and reaps it.
stop_process() {
	kill -TERM "$1" 2>/dev/null || return 0
	poll 10 exited "$1" || kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# free_port prints a loopback port that nothing listens on. It draws from below Linux's ephemeral range
# (32768-60999), where 127.0.0.1:0 listeners and outgoing connections take theirs, so only another
# explicit pick - a parallel run of this script, say - can take it before the service binds it: start
# then tries again.
free_port() {
	local port
	for _ in {1..50}; do
		port=$((10000 + RANDOM % 22768))
		if ! (: <>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return
		fi
	done
	say "found no free loopback port"
	return 1
}

# http_answers PORT: true once an HTTP server answers a request on 127.0.0.1:PORT.
http_answers() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1"
		printf 'GET / HTTP/1.0\r\n\r\n' >&3
		read -r -t 5 status <&3
		[[ $status == HTTP/* ]]
	) 2>/dev/null
}

# --- Programs -----------------------------------------------------------------------------------------

# find_tool NAME prints the path of program NAME: from $PATH, else from where Debian keeps programs out
# of a user's $PATH (/usr/sbin, /sbin, /usr/lib/postgresql/VERSION/bin, newest first). testenv.Tool
# looks in the same places.
find_tool() {
	local dir
	type -P -- "$1" && return
	for dir in /usr/sbin /sbin $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -rV); do
		if [[ -x $dir/$1 ]]; then
			echo "$dir/$1"
			return
		fi
	done
	return 1
}

as_root() {
	if ((EUID == 0)); then
		"$@"
	elif type -P sudo >/dev/null; then
		sudo "$@"
	else
		die "$* needs root"
	fi
}

# install_missing_packages installs the Debian package of every program in tools.txt that find_tool
# cannot find.
install_missing_packages() {
	local program package missing=()
	while read -r program package _; do
		[[ -n $program && $program != \#* ]] || continue
		if [[ $program == /* ]]; then
			# A file a package provides, not a program (protoc's include files).
			[[ -e $program ]] || missing+=("$package")
			continue
		fi
		find_tool "$program" >/dev/null || missing+=("$package")
	done <"$repo/internal/testenv/tools.txt"
	((${#missing[@]})) || return 0
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	say "installing ${missing[*]}"
	# A fresh machine may have no package lists at all.
	as_root apt-get -o DPkg::Lock::Timeout=600 -qq update
	as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -qq \
		install -y --no-install-recommends "${missing[@]}"
}

# build_versitygw sets versitygw to the path of versitygw $versitygw_version in the cache, building it
# there first if need be (about 90 s). The build lands in a directory of its own and is renamed into
# place, so a parallel run neither sees half a binary nor has the one it runs overwritten.
build_versitygw() {
	versitygw=$cache/bin/versitygw
	local info
	if info=$(go version -m "$versitygw" 2>/dev/null) &&
		[[ $info == *$'\tmod\tgithub.com/versity/versitygw\t'"$versitygw_version"$'\t'* ]]; then
		return
	fi
	type -P go >/dev/null || die "go is not installed: see https://go.dev/doc/install"
	say "building versitygw $versitygw_version into $cache/bin (once)"
	mkdir -p "$cache/bin"
	build=$(mktemp -d "$cache/bin/.build.XXXXXX")
	GOBIN=$build go install "github.com/versity/versitygw/cmd/versitygw@$versitygw_version" ||
		die "could not build versitygw"
	mv -f -- "$build/versitygw" "$versitygw"
	rmdir -- "$build"
	build=
}

# --- Mosquitto ----------------------------------------------------------------------------------------

mqtt_user=gitfleet-server # the server's account: every topic
mqtt_devices=(device-1 device-2)

# cert NAME CN EXTENSION...: writes $mq/NAME.crt and $mq/NAME.key, signed by the test CA unless NAME is ca.
cert() {
	local name=$1 cn=$2 args=()
	shift 2
	[[ $name == ca ]] || args+=(-CA "$mq/ca.crt" -CAkey "$mq/ca.key")
	for ext; do args+=(-addext "$ext"); done
	quietly openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc -days 2 \
		-subj "/CN=$cn" -keyout "$mq/$name.key" -out "$mq/$name.crt" "${args[@]}"
}

# setup_mosquitto writes the accounts, the ACL and the certificates: a throwaway CA, the broker's
# certificate for 127.0.0.1, and a client certificate whose CN is device-1, as a device's would be.
setup_mosquitto() {
	mosquitto=$(find_tool mosquitto) || die "mosquitto is not installed"
	mq=$work/mosquitto
	mkdir "$mq"
	mqtt_password=$(secret)
	device_password=$(secret)
	quietly mosquitto_passwd -c -b "$mq/passwd" "$mqtt_user" "$mqtt_password"
	local device
	for device in "${mqtt_devices[@]}"; do
		quietly mosquitto_passwd -b "$mq/passwd" "$device" "$device_password"
	done
	cat >"$mq/acl" <<-EOF
		user $mqtt_user
		topic readwrite #

		# Every other account is a device, with the rules gitfleet-server mosquitto-acl renders
		# (server/broker/acl.go) for any fleet: it reads its fleet's channels and its own desired
		# state, and writes its own status and events alone. (Pattern lines apply to every account.)
		pattern read gitfleet/v1/+/channels/#
		pattern write gitfleet/v1/+/devices/%u/status
		pattern write gitfleet/v1/+/devices/%u/events
		pattern read gitfleet/v1/+/devices/%u/desired
	EOF
	cert ca "gitfleet test CA" basicConstraints=critical,CA:TRUE keyUsage=critical,keyCertSign,cRLSign
	cert server 127.0.0.1 basicConstraints=critical,CA:FALSE extendedKeyUsage=serverAuth \
		subjectAltName=IP:127.0.0.1,DNS:localhost
	cert device-1 device-1 basicConstraints=critical,CA:FALSE extendedKeyUsage=clientAuth
}

start_mosquitto() {
	mqtt_port=$(free_port) && mqtts_port=$(free_port) || return
	# As root, Mosquitto would drop to user mosquitto, which cannot read the keys: "user root" keeps it.
	cat >"$mq/mosquitto.conf" <<-EOF
		user root
		per_listener_settings false
		persistence false
		log_dest stderr
		allow_anonymous false
		password_file $mq/passwd
		acl_file $mq/acl

		listener $mqtt_port 127.0.0.1

		listener $mqtts_port 127.0.0.1
		cafile $mq/ca.crt
		certfile $mq/server.crt
		keyfile $mq/server.key
		require_certificate true
		use_identity_as_username true
	EOF
	setsid "$mosquitto" -c "$mq/mosquitto.conf" >"$mq/log" 2>&1 </dev/null &
	mosquitto_pid=$!
	await "$mosquitto_pid" mqtt_answers
}

# mqtt_answers: true once the broker takes a publish from the server's account on the password
# listener and from device-1's certificate on the TLS one, which proves the accounts and the CA too.
mqtt_answers() {
	mosquitto_pub -h 127.0.0.1 -p "$mqtt_port" -u "$mqtt_user" -P "$mqtt_password" -q 1 -n \
		-t gitfleet/v1/harness/ready 2>/dev/null &&
		mosquitto_pub -h 127.0.0.1 -p "$mqtts_port" --cafile "$mq/ca.crt" -q 1 -n \
			--cert "$mq/device-1.crt" --key "$mq/device-1.key" \
			-t gitfleet/v1/harness/devices/device-1/ready 2>/dev/null
}

stop_mosquitto() {
	[[ -n ${mosquitto_pid-} ]] || return 0
	stop_process "$mosquitto_pid"
	mosquitto_pid=
}

# --- PostgreSQL ---------------------------------------------------------------------------------------

# as_postgres CMD...: runs CMD as user postgres when this script is root, as initdb refuses root.
as_postgres() {
	if ((EUID == 0)); then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

setup_postgres() {
	pg_ctl=$(find_tool pg_ctl) || die "PostgreSQL is not installed"
	initdb=$(find_tool initdb) || die "PostgreSQL is not installed"
	pg=$work/postgres
	pg_password=$(secret)
	mkdir -m 0700 "$pg"
	printf '%s\n' "$pg_password" >"$pg/password"
	if ((EUID == 0)); then
		chown -R postgres: "$pg"
		chmod 0711 "$work"
	fi
	as_postgres test -w "$pg" || die "user postgres cannot reach $pg: point TMPDIR to a directory it can reach"
	quietly as_postgres "$initdb" -D "$pg/data" -U postgres --pwfile="$pg/password" \
		--auth-local=trust --auth-host=scram-sha-256 --no-sync -E UTF8 --locale=C.UTF-8
	rm -f "$pg/password"
}

start_postgres() {
	pg_port=$(free_port) || return
	rm -f "$pg/log"
	# Every test package of a run may hold a pool of connections at once: room for more than 100.
	local options="-c listen_addresses=127.0.0.1 -p $pg_port -k '$pg'"
	options+=" -c max_connections=300 -c fsync=off -c full_page_writes=off"
	as_postgres "$pg_ctl" -D "$pg/data" -l "$pg/log" -w -t "$deadline" -o "$options" start >/dev/null
}

stop_postgres() {
	[[ -f ${pg-}/data/postmaster.pid ]] || return 0
	as_postgres "$pg_ctl" -D "$pg/data" -m immediate -w -t 10 stop >/dev/null ||
		kill -KILL "$(head -n 1 "$pg/data/postmaster.pid")" 2>/dev/null || true
}

# --- versitygw (S3) -----------------------------------------------------------------------------------

setup_versitygw() {
	s3=$work/versitygw
	mkdir -p "$s3/data"
	s3_access_key=gitfleet-test
	s3_secret_key=$(secret)
}

start_versitygw() {
	s3_port=$(free_port) || return
	# The keys go in versitygw's environment, where ps does not show them.
	ROOT_ACCESS_KEY=$s3_access_key ROOT_SECRET_KEY=$s3_secret_key setsid "$versitygw" \
		--port "127.0.0.1:$s3_port" --region "$s3_region" --quiet posix "$s3/data" >"$s3/log" 2>&1 </dev/null &
	versitygw_pid=$!
	await "$versitygw_pid" http_answers "$s3_port"
}

stop_versitygw() {
	[[ -n ${versitygw_pid-} ]] || return 0
	stop_process "$versitygw_pid"
	versitygw_pid=
}

# --- Running ------------------------------------------------------------------------------------------

# start NAME starts service NAME with start_NAME, which picks free ports, launches it (in a session of
# its own, so that Ctrl-C in a terminal reaches CMD and not the services, which stop after it) and waits
# until it answers. A port can be taken between free_port and the bind - by a parallel run - so a start
# that failed on "address already in use" is tried again on other ports. start_NAME runs as a
# condition, where set -e is off: it returns its own failures.
start() {
	local name=$1 log=$work/$1/log
	for _ in 1 2 3; do
		"start_$name" && return
		"stop_$name"
		grep -qi 'address already in use' "$log" 2>/dev/null || break
		say "$name: a port was taken meanwhile; trying others"
	done
	say "$name did not start; the end of its log:"
	tail -n 25 "$log" >&2 || true
	exit 1
}

# cleanup runs at every exit: it stops the services and removes the temporary directory, ignoring
# further signals and going on past failures, so that one stuck service does not keep the others.
cleanup() {
	set +e
	trap '' INT TERM HUP
	stop_versitygw
	stop_postgres
	stop_mosquitto
	[[ -z $work ]] || rm -rf -- "$work"
	[[ -z ${build-} ]] || rm -rf -- "$build"
}

# on_signal NAME NUMBER passes the signal on to CMD's process group, gives it 10 s to end before
# killing what is left of it, and exits 128+NUMBER, which runs cleanup.
on_signal() {
	trap '' INT TERM HUP
	if [[ -n ${cmd_pid-} ]]; then
		kill -s "$1" -- "-$cmd_pid" 2>/dev/null || true
		poll 10 exited "$cmd_pid" || true
		kill -s KILL -- "-$cmd_pid" 2>/dev/null || true
	fi
	exit $((128 + $2))
}

# run CMD... runs CMD in the background and waits for it, so that a signal to this script is handled
# at once (bash runs a trap only between commands), not when CMD ends. CMD leads a process group of its
# own, which on_signal signals whole: go test, say, and the test binaries below it. The subshell first
# undoes the ignoring of SIGINT and SIGQUIT that bash imposes on background commands; stdin is passed
# on explicitly for the same reason.
run() {
	(
		trap - INT QUIT
		exec setsid -- "$@"
	) <&0 &
	cmd_pid=$!
	local status=0
	wait "$cmd_pid" || status=$?
	cmd_pid=
	return "$status"
}

main() {
	if (($# == 0)); then
		sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2 # the comment above
		exit 2
	fi
	trap cleanup EXIT
	trap 'on_signal INT 2' INT
	trap 'on_signal TERM 15' TERM
	trap 'on_signal HUP 1' HUP

	install_missing_packages
	build_versitygw
	work=$(mktemp -d "${TMPDIR:-/tmp}/gitfleet-services.XXXXXX")
	setup_mosquitto
	setup_postgres
	setup_versitygw
	start mosquitto
	start postgres
	start versitygw

	export GITFLEET_TEST_MQTT_ADDR=127.0.0.1:$mqtt_port
	export GITFLEET_TEST_MQTT_USER=$mqtt_user
	export GITFLEET_TEST_MQTT_PASSWORD=$mqtt_password
	export GITFLEET_TEST_MQTT_DEVICE_USERS="${mqtt_devices[*]}"
	export GITFLEET_TEST_MQTT_DEVICE_PASSWORD=$device_password
	export GITFLEET_TEST_MQTT_TLS_ADDR=127.0.0.1:$mqtts_port
	export GITFLEET_TEST_MQTT_CA=$mq/ca.crt
	export GITFLEET_TEST_MQTT_CA_KEY=$mq/ca.key
	export GITFLEET_TEST_MQTT_CERT=$mq/device-1.crt
	export GITFLEET_TEST_MQTT_KEY=$mq/device-1.key
	export GITFLEET_TEST_PG_DSN="postgres://postgres:$pg_password@127.0.0.1:$pg_port/postgres?sslmode=disable"
	export GITFLEET_TEST_S3_ENDPOINT=http://127.0.0.1:$s3_port
	export GITFLEET_TEST_S3_ACCESS_KEY=$s3_access_key
	export GITFLEET_TEST_S3_SECRET_KEY=$s3_secret_key
	export GITFLEET_TEST_S3_REGION=$s3_region

	local v
	v=$("$mosquitto" -h 2>&1 || true)
	v=${v%%$'\n'*}
	service mosquitto "${v##* }" "mqtt://$GITFLEET_TEST_MQTT_ADDR, mqtts://$GITFLEET_TEST_MQTT_TLS_ADDR"
	v=$("$pg_ctl" --version)
	v=${v#*) }
	service postgresql "${v%% *}" "postgres://127.0.0.1:$pg_port"
	service versitygw "$versitygw_version" "$GITFLEET_TEST_S3_ENDPOINT"

	run "$@" # its status is the script's
}

# One line, so that bash, which reads a script as it runs it, reads nothing more once main returns:
# the file may have been edited meanwhile.
main "$@"; exit
