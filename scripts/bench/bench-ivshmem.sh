#!/usr/bin/env bash
# ivshmem doorbell ping-pong round trips: kvmini<->kvmini beside QEMU<->QEMU, one server.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 scripts/bench/ivshmem.py "${IVSHMEM_BENCH_RUNS:-3}" "${IVSHMEM_BENCH_ROUNDS:-2000}"
