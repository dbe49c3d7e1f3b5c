#!/usr/bin/env bash
# generate.sh regenerates the Go code of gitfleet's protobuf definitions
# (proto/**/*.proto -> *.pb.go beside them). `make proto` runs it.
#
# Usage:
#   proto/generate.sh                  install protoc-gen-go if missing, then
#                                      rewrite the committed *.pb.go files
#   proto/generate.sh --out DIR        write the generated tree under DIR instead
#   proto/generate.sh --no-install     never install: fail with the command that
#                                      installs a missing tool
#   proto/generate.sh --install-tools  only install protoc-gen-go
#
# The output is byte-identical on every machine because both tools are pinned:
#   - protoc is Debian's protobuf-compiler 3.21.12 (Debian 12 and 13 and Ubuntu
#     24.04 ship it), with libprotobuf-dev for google/protobuf/timestamp.proto.
#     Its version is written into every generated file's header.
#   - protoc-gen-go is the version of google.golang.org/protobuf in go.mod, so
#     generated code always matches the runtime it is compiled against. It is
#     installed into $GITFLEET_TOOLS (default ~/.cache/gitfleet/bin).
set -euo pipefail

readonly want_protoc="libprotoc 3.21.12"
readonly protoc_install="apt-get install -y protobuf-compiler libprotobuf-dev"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly here
tools=${GITFLEET_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/gitfleet/bin}
readonly tools

out=""
install=yes
only_tools=no
while (($# > 0)); do
	case $1 in
	--out)
		[[ $# -ge 2 && -n $2 ]] || { echo "generate.sh: --out needs a directory" >&2; exit 2; }
		out=$2
		shift 2
		;;
	--no-install)
		install=no
		shift
		;;
	--install-tools)
		only_tools=yes
		shift
		;;
	*)
		echo "generate.sh: unknown argument $1 (want --out DIR, --no-install or --install-tools)" >&2
		exit 2
		;;
	esac
done

plugin_version=$(cd "$here" && go list -m -f '{{.Version}}' google.golang.org/protobuf)
readonly plugin_version
readonly plugin="$tools/protoc-gen-go"
readonly plugin_install="GOBIN=$tools go install google.golang.org/protobuf/cmd/protoc-gen-go@$plugin_version"

# ensure_plugin installs protoc-gen-go at the version go.mod pins, unless the
# one in the tool folder already is that version.
ensure_plugin() {
	if [[ -x $plugin && $("$plugin" --version) == "protoc-gen-go $plugin_version" ]]; then
		return
	fi
	if [[ $install == no ]]; then
		echo "generate.sh: protoc-gen-go $plugin_version is not in $tools; install it with: $plugin_install" >&2
		exit 1
	fi
	GOBIN=$tools go install "google.golang.org/protobuf/cmd/protoc-gen-go@$plugin_version"
}

# check_protoc fails unless protoc is the pinned version and finds the
# well-known types.
check_protoc() {
	if ! command -v protoc >/dev/null; then
		echo "generate.sh: protoc is not installed; install it with: $protoc_install" >&2
		exit 1
	fi
	local got
	got=$(protoc --version)
	if [[ $got != "$want_protoc" ]]; then
		echo "generate.sh: protoc is $got, want $want_protoc (its version goes into every generated file); install it with: $protoc_install" >&2
		exit 1
	fi
	if ! protoc --descriptor_set_out=/dev/null google/protobuf/timestamp.proto 2>/dev/null; then
		echo "generate.sh: protoc cannot find google/protobuf/timestamp.proto; install it with: $protoc_install" >&2
		exit 1
	fi
}

ensure_plugin
if [[ $only_tools == yes ]]; then
	exit 0
fi
check_protoc

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cd "$here"
mapfile -t sources < <(find . -name '*.proto' -printf '%P\n' | LC_ALL=C sort)
protoc -I . --plugin=protoc-gen-go="$plugin" \
	--go_out="$tmp" --go_opt=paths=source_relative \
	"${sources[@]}"

if [[ -n $out ]]; then
	mkdir -p "$out"
	cp -R "$tmp/." "$out/"
	exit 0
fi

# Replace every committed *.pb.go, so files of deleted .proto files go too.
find . -name '*.pb.go' -delete
cp -R "$tmp/." .
