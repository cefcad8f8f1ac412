#!/usr/bin/env bash
# virtio-scsi sequential reads (scsibench guest): kvmini beside QEMU, one image,
# one run, with host CPU time per request. Options: see scripts/bench/scsi.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 scripts/bench/scsi.py "$@"
