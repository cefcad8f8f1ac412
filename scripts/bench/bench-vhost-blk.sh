#!/usr/bin/env bash
# vhost-user-blk sequential reads (blkbench guest) over qemu-storage-daemon:
# kvmini beside QEMU's vhost-user-blk-pci, and kvmini's own virtio-blk, one
# image, one run, host CPU per request (VMM + daemon). See scripts/bench/vhost_blk.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 scripts/bench/vhost_blk.py "$@"
