#!/usr/bin/env bash
# CPL0 vs CPL3 costs inside a guest (build/guest/bench.elf): kvmini beside QEMU.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 scripts/bench/guest_cpl.py "${GUEST_CPL_RUNS:-5}"
