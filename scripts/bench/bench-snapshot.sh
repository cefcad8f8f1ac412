#!/usr/bin/env bash
# Snapshot save/restore: kvmini vs QEMU on the same guest in the same run.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 scripts/bench/snapshot.py "${SNAP_RUNS:-10}"
