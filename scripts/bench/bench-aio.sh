#!/usr/bin/env bash
# aio event loop: cross-thread BH schedule-to-callback and coroutine
# wake-to-run latency (median, p99), one-shot BH throughput with one and
# two producers, beside the floor (a bare eventfd write waking a thread in
# epoll_wait); then single-thread costs: coroutine create+enter+return
# (pooled and with a new stack), enter+yield, and a one-shot BH. One run.
# The binary is static musl -O2 like kvmini (rule in aio/aio.mk).
# Usage: bench-aio.sh [SAMPLES [ONESHOTS]]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
make -s "$BUILD/bench/aio_bench" >/dev/null
echo "host: $(nproc) CPUs, $(uname -r); numbers from here do not transfer to other hosts"
"$BUILD/bench/aio_bench" "$@"
