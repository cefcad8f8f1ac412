#!/usr/bin/env bash
# Build a static liburing.a from Debian's own liburing source package.
#
#   scripts/build-liburing.sh DIR CC MUSL_INC
#
# DIR       output dir: DIR/liburing.a, DIR/include/liburing.h and DIR/include/liburing/*.h
#           (DIR/dl caches the download)
# CC        compiler for the library (musl-gcc for kvmini)
# MUSL_INC  private include dir of kvmini's musl build (its linux/ link gives musl-gcc
#           the kernel headers liburing's configure and headers look for)
#
# Why: Debian's liburing-dev is built against glibc, and kvmini is one static musl
# binary. The source comes through scripts/fetch-deb-source.sh (a private deb-src
# list, so the host's apt setup is not touched). The orig tarball is checked against
# the SHA-256 pinned below (the same one bookworm's liburing_2.3-3.dsc lists) and
# cached: a rebuild does not download.
#
# Notes
# - Built with libc, as Debian builds it, not --nolibc: the nolibc build defines its own
#   byte-loop memset, which would replace musl's in the whole static binary.
# - On x86_64 liburing makes its system calls with inline asm even with libc, so the
#   objects need of libc only calloc, malloc, free and the memset/memcpy the compiler
#   may emit (checked below). The same archive thus links into host (glibc) programs
#   such as the unit tests, as libZydis.a does; -fPIE keeps it linkable into Debian's
#   default PIE executables.
# - Debian's only patch (0001-man-Fix-typos.patch) touches man pages: not applied.
set -euo pipefail

if [ $# -ne 3 ]; then
	echo "usage: $0 DIR CC MUSL_INC" >&2
	exit 2
fi
DIR=$1
CC=$2
MUSL_INC=$3

PKG=liburing
VERSION=2.3-3
ORIG=liburing_2.3.orig.tar.gz
ORIG_SHA256=2eac26f880125d83f75ba8641fde5d88226dd352d3cee95d45a9128758a8f1be

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

if [ ! -e "$MUSL_INC/linux/io_uring.h" ]; then
	echo "$0: $MUSL_INC/linux/io_uring.h missing (make creates the kernel header links)" >&2
	exit 1
fi

"$(dirname "$0")/fetch-deb-source.sh" "$DIR" "$PKG" "$VERSION" "$ORIG" "$ORIG_SHA256"
SRC=$DIR/src
rm -rf "$DIR/include" "$DIR/liburing.a"
mkdir -p "$DIR/include/liburing"

# configure writes config-host.h and liburing/compat.h for this compiler and these
# kernel headers; then upstream's own rule builds the archive (4 small files). Without
# the calling make's MAKEFLAGS: its jobserver is not passed to scripts.
(cd "$SRC" && ./configure --cc="$CC -isystem $MUSL_INC" >configure.out) ||
	{ cat "$SRC/configure.out" >&2; echo "$0: configure failed" >&2; exit 1; }
env -u MAKEFLAGS -u MFLAGS make -s -C "$SRC/src" ENABLE_SHARED=0 \
	CFLAGS="-g -O2 -fPIE -fno-stack-protector -w" liburing.a

# Anything the objects need beyond this list would be libc that glibc and musl may not
# both provide: fail loudly rather than at link time.
extra=$(nm -u "$SRC"/src/*.ol | awk 'NF==2 && $1=="U" {print $2}' | sort -u |
	grep -v -E '^_?_?io_uring' | grep -v -x -E 'calloc|malloc|free|memset|memcpy' || true)
if [ -n "$extra" ]; then
	echo "$0: unexpected external symbols in liburing objects: $extra" >&2
	exit 1
fi

cp "$SRC/src/include/liburing.h" "$DIR/include/"
cp "$SRC"/src/include/liburing/{io_uring.h,compat.h,barrier.h} "$DIR/include/liburing/"
mv "$SRC/src/liburing.a" "$DIR/liburing.a"
echo "build-liburing: $DIR/liburing.a"
