#!/usr/bin/env bash
# Build a static libZydis.a from Debian's own zydis source package.
#
#   scripts/build-zydis.sh DIR CC MUSL_INC
#
# DIR       output dir: DIR/libZydis.a, DIR/include/Zydis/*.h (DIR/dl caches the download)
# CC        compiler for the library (musl-gcc for kvmini)
# MUSL_INC  private include dir of kvmini's musl build; it links MUSL_INC/Zycore to
#           /usr/include/Zycore (package libzycore-dev), which is all Zydis needs of Zycore.
#
# Why: Debian ships only a shared libZydis, and kvmini is one static musl binary.
# The source comes through scripts/fetch-deb-source.sh (a private deb-src list, so
# the host's apt setup is not touched). The orig tarball is checked against the
# SHA-256 pinned below (the same one bookworm's zydis_4.0.0-1.dsc lists) and cached:
# a rebuild does not download.
#
# Notes
# - Zydis 4 has no CMake-generated export header (ZydisExportConfig.h was Zydis 3):
#   Zydis/Defines.h picks ZYDIS_EXPORT from ZYDIS_STATIC_BUILD, which users define
#   (the Makefile does). Zycore's Defines.h works the same way with ZYCORE_STATIC_BUILD.
# - Zydis needs no Zycore library code, only its headers: the objects reference only
#   memcpy, memset, strlen and __assert_fail (checked below), so the same archive links
#   into host (glibc) programs such as the unit tests. -fPIE keeps it linkable into
#   Debian's default PIE executables.
# - Debian's only patch (readme-remove-badges.patch) touches README.md: not applied.
set -euo pipefail

if [ $# -ne 3 ]; then
	echo "usage: $0 DIR CC MUSL_INC" >&2
	exit 2
fi
DIR=$1
CC=$2
MUSL_INC=$3

PKG=zydis
VERSION=4.0.0-1
ORIG=zydis_4.0.0.orig.tar.gz
ORIG_SHA256=e990107f80c62afc1deb51de230023a1098db801b8ea6bf483e296d45459e234

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

if [ ! -e "$MUSL_INC/Zycore/Defines.h" ]; then
	echo "$0: $MUSL_INC/Zycore/Defines.h missing (install libzycore-dev; make creates the link)" >&2
	exit 1
fi

"$(dirname "$0")/fetch-deb-source.sh" "$DIR" "$PKG" "$VERSION" "$ORIG" "$ORIG_SHA256"
SRC=$DIR/src
OBJ=$DIR/obj
rm -rf "$OBJ" "$DIR/include" "$DIR/libZydis.a"
mkdir -p "$OBJ" "$DIR/include"

CFLAGS=(-std=gnu11 -O2 -g -fPIE -isystem "$MUSL_INC" -I"$SRC/include" -I"$SRC/src"
	-DZYDIS_STATIC_BUILD -DZYCORE_STATIC_BUILD -w)
# One compiler per source file, all in parallel: the library takes a couple of seconds.
pids=()
for c in "$SRC"/src/*.c; do
	"$CC" "${CFLAGS[@]}" -c "$c" -o "$OBJ/$(basename "$c" .c).o" &
	pids+=($!)
done
for p in "${pids[@]}"; do
	wait "$p" || { echo "$0: compiling Zydis failed" >&2; exit 1; }
done

# Anything the objects need beyond this list would be Zycore library code or libc
# that glibc and musl may not both provide: fail loudly rather than at link time.
extra=$(nm -u "$OBJ"/*.o | awk 'NF==2 && $1=="U" {print $2}' | sort -u |
	grep -v -E '^(Zydis|zydis_)' | grep -v -x -E 'memcpy|memset|strlen|__assert_fail' || true)
if [ -n "$extra" ]; then
	echo "$0: unexpected external symbols in Zydis objects: $extra" >&2
	exit 1
fi

ar rcs "$DIR/libZydis.a.tmp" "$OBJ"/*.o
mv "$DIR/libZydis.a.tmp" "$DIR/libZydis.a"
cp -r "$SRC/include/Zydis" "$DIR/include/"
echo "build-zydis: $DIR/libZydis.a"
