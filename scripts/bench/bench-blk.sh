#!/usr/bin/env bash
# virtio-blk sequential reads (blkbench guest): kvmini beside QEMU, one image,
# one run, with host CPU time per request. Options: see scripts/bench/blk.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 scripts/bench/blk.py "$@"
