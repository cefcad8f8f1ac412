#!/usr/bin/env bash
# Debian's kernel: start to /init and to exit after poweroff, kvmini vs QEMU microvm.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 scripts/bench/linux_boot.py "${LINUX_BOOT_RUNS:-5}"
