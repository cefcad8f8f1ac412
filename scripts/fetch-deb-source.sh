#!/usr/bin/env bash
# Fetch a Debian source package, checked against a pinned SHA-256, and unpack it.
#
#   scripts/fetch-deb-source.sh DIR PKG VERSION ORIG SHA256
#
# Leaves the orig tarball ORIG in DIR/dl (with the .dsc and Debian tarball beside it)
# and its contents, freshly unpacked, in DIR/src. Downloads nothing when DIR/dl/ORIG is
# already there with that checksum. Exits non-zero if the download fails or the
# tarball's SHA-256 is not SHA256. DEB_MIRROR and DEB_SUITE (default: deb.debian.org,
# bookworm) say where from.
#
# Why: the static libraries kvmini links (scripts/build-*.sh) come from Debian's own
# sources. A private deb-src list inside DIR leaves the host's apt setup untouched.
set -euo pipefail

if [ $# -ne 5 ]; then
	echo "usage: $0 DIR PKG VERSION ORIG SHA256" >&2
	exit 2
fi
DIR=$1 PKG=$2 VERSION=$3 ORIG=$4 SHA256=$5
MIRROR=${DEB_MIRROR:-http://deb.debian.org/debian}
SUITE=${DEB_SUITE:-bookworm}
mkdir -p "$DIR/dl"
DL=$(cd "$DIR/dl" && pwd)

have_orig() {
	[ -f "$DL/$ORIG" ] && echo "$SHA256  $DL/$ORIG" | sha256sum --status -c -
}

if ! have_orig; then
	APT=$DL/apt
	mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial"
	echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $SUITE main" \
		>"$APT/sources.list"
	opts=(-o "Dir::Etc::SourceList=$APT/sources.list" -o Dir::Etc::SourceParts=/dev/null
	      -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache"
	      -o APT::Sandbox::User=root -qq)
	echo "fetch-deb-source: $PKG $VERSION from $MIRROR $SUITE"
	apt-get "${opts[@]}" update
	(cd "$DL" && apt-get "${opts[@]}" source --download-only "$PKG=$VERSION")
	rm -rf "$APT" # the package lists are ~20 MB and not needed again
	if ! have_orig; then
		echo "$0: $DL/$ORIG missing or its SHA-256 is not $SHA256" >&2
		exit 1
	fi
fi

rm -rf "$DIR/src"
mkdir -p "$DIR/src"
tar -xzf "$DL/$ORIG" -C "$DIR/src" --strip-components=1
