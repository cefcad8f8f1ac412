#!/usr/bin/env bash
# Fetch a Debian source package into a cache dir, checked against a pinned SHA-256.
#
#   scripts/fetch-deb-source.sh DL PKG VERSION ORIG SHA256 MIRROR SUITE
#
# Leaves DL/ORIG (the orig tarball, with the .dsc and Debian tarball beside it);
# downloads nothing when DL/ORIG is already there with that checksum. Exits non-zero
# if the download fails or the tarball's SHA-256 is not SHA256.
#
# Why: the static libraries kvmini links (scripts/build-*.sh) come from Debian's own
# sources. A private deb-src list inside DL leaves the host's apt setup untouched.
set -euo pipefail

if [ $# -ne 7 ]; then
	echo "usage: $0 DL PKG VERSION ORIG SHA256 MIRROR SUITE" >&2
	exit 2
fi
DL=$1 PKG=$2 VERSION=$3 ORIG=$4 SHA256=$5 MIRROR=$6 SUITE=$7

have_orig() {
	[ -f "$DL/$ORIG" ] && echo "$SHA256  $DL/$ORIG" | sha256sum --status -c -
}

have_orig && exit 0
mkdir -p "$DL"
DL=$(cd "$DL" && pwd)
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
