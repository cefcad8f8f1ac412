#!/usr/bin/env bash
# make bench: runs every scripts/bench/bench-*.sh in name order. Each prints
# kvmini beside its peer (QEMU or a bare floor) from one run, medians and ratio.
set -euo pipefail
cd "$(dirname "$0")/../.."
status=0
for b in scripts/bench/bench-*.sh; do
	[ -e "$b" ] || continue
	echo "=== $(basename "$b" .sh)"
	"$b" || { echo "benchmark $b failed" >&2; status=1; }
	echo
done
exit $status
