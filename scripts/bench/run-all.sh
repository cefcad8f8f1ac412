#!/usr/bin/env bash
# make bench: runs scripts/bench/bench-*.sh in name order. Each prints
# kvmini beside its peer (QEMU or a bare floor) from one run, medians and ratio.
# Usage: run-all.sh [NAME]: with NAME only bench-NAME.sh; without, all but
# linux-boot, which make bench runs in a box of its own with one vCPU (a
# Linux guest nested in a two-vCPU box stalls now and then: docs/testing.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
status=0
for b in scripts/bench/bench-*.sh; do
	[ -e "$b" ] || continue
	name=$(basename "$b" .sh)
	if [ $# -gt 0 ]; then
		[ "$name" = "bench-$1" ] || continue
	elif [ "$name" = bench-linux-boot ]; then
		continue
	fi
	echo "=== $name"
	"$b" || { echo "benchmark $b failed" >&2; status=1; }
	echo
done
exit $status
