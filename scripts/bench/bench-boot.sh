#!/usr/bin/env bash
# Start-to-exit time and peak RSS of build/guest/hello.elf: kvmini vs QEMU microvm.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 scripts/bench/boot.py "${BOOT_RUNS:-25}"
