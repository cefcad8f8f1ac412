#!/usr/bin/env bash
# Installs every Debian package the build, tests and benchmarks need.
# --if-missing: do nothing when all are already installed (used by make all/test/run).
set -euo pipefail
PKGS=(make gcc musl-tools libzycore-dev libcmocka-dev libjsmn-dev python3 python3-pytest
      qemu-system-x86 dpkg-dev xz-utils ca-certificates file hyperfine clang-format time util-linux
      help2man man-db groff-base acpica-tools e2fsprogs clang libclang-rt-dev)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
BOX_STAMP="$(dirname "$0")/../build/kvmbox/STAMP"
if [ "${1:-}" = "--if-missing" ] && [ ${#missing[@]} -eq 0 ]; then
	# The test VM's kernel and busybox (scripts/kvmbox), once.
	[ -e "$BOX_STAMP" ] || exec "$(dirname "$0")/kvmbox" prepare
	exit 0
fi
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${PKGS[@]}"
# The test VM that runs VM tests on hosts without /dev/kvm: Debian's kernel and
# busybox-static, downloaded with apt-get download and unpacked under build/.
"$(dirname "$0")/kvmbox" prepare
