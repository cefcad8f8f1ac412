/* SPDX-License-Identifier: MIT */
/*
 * The benchmark (blkbench, scsibench), for any disk of disk_drv.h:
 * sequential read throughput. For each request size (sizes=, KiB, default
 * 4,64,1024) and queue depth (depths=, default 1,16), reads from sector 0
 * onwards, at most mb=N MiB (default 64) and reqs=N requests (default 4096)
 * per point, wrapping around the disk if it is smaller. Completion by
 * polling the used ring at CPL3 (mode=poll, the default), by MSI-X
 * interrupt (mode=irq), or both in turn (mode=both).
 *
 * Timing: TSC, at the rate kvmclock gives (no kvmclock: ticks only). The
 * I/O loop runs at CPL3. One line per point, machine-readable (NAME is the
 * disk's name; tests/system/blkutil.py parse_bench, scripts/bench/blk.py):
 *   NAME: mode=poll bs=4096 qd=1 reqs=4096 bytes=16777216 ns=N
 *         MBps=X.XX iops=N kicks=N irq_waits=N
 * (one line; MB = 10^6 bytes), then `NAME: done`.
 */
#ifndef GUEST_DISKBENCH_H
#define GUEST_DISKBENCH_H

#include "disk_drv.h"

/* The whole benchmark on open disk @d. CPL0. Returns the exit status: 0,
 * 2 on an I/O error, 3 if the buffers or a restart for irq mode failed. */
int diskbench_main(struct disk *d);

#endif
