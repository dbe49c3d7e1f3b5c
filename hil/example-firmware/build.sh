#!/bin/sh
# build.sh: build the virtual board's root filesystem image, out/rootfs.img.
#
#   ./build.sh [--version V] [--kind healthy|broken|unhealthy] [--size BYTES] [-o FILE]
#
# The version defaults to the tag the server builds ($GITFLEET_TAG without
# its v), the kind to the contents of image-kind. The image is a header block
# of 512 bytes (one line, padded with newlines) and a payload whose SHA-256 the
# header carries; hil/vboard/FORMAT.md describes it, and vboard.WriteImage
# writes the same bytes. Only POSIX sh and coreutils: it runs in the server's
# clean build environment.
set -eu

version=${GITFLEET_TAG:-}
version=${version#v}
kind=$(cat "$(dirname "$0")/image-kind" 2>/dev/null || echo healthy)
size=1048576
out=out/rootfs.img
while [ $# -gt 0 ]; do
	case $1 in
	--version) version=$2; shift 2 ;;
	--kind) kind=$2; shift 2 ;;
	--size) size=$2; shift 2 ;;
	-o) out=$2; shift 2 ;;
	*) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
case $kind in
healthy|broken|unhealthy) ;;
*) echo "build.sh: kind $kind: want healthy, broken or unhealthy" >&2; exit 2 ;;
esac
if [ -z "$version" ]; then
	echo "build.sh: no version: build from a tag (GITFLEET_TAG) or give --version" >&2
	exit 2
fi
if [ "$size" -le 512 ]; then
	echo "build.sh: size $size: want more than the 512-byte header" >&2
	exit 2
fi

payload=$((size - 512))
unit="gitfleet vboard image $kind $version"
sum=$(yes "$unit" | head -c "$payload" | sha256sum | cut -d' ' -f1)
line="GITFLEET-VBOARD-IMAGE v1 kind=$kind version=$version payload=$payload sha256=$sum"

mkdir -p "$(dirname "$out")"
{
	printf '%s\n' "$line"
	head -c $((512 - ${#line} - 1)) /dev/zero | tr '\0' '\n'
	yes "$unit" | head -c "$payload"
} >"$out.tmp"
mv "$out.tmp" "$out"
echo "build.sh: $out: $kind $version, $size bytes"
