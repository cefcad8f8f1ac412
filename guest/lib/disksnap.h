/* SPDX-License-Identifier: MIT */
/*
 * The snapshot workload (snap-blk, snap-scsi), for any disk of disk_drv.h:
 * keeps many requests in flight, with contents both sides can check, for
 * as long as it runs; meant to be snapshotted and restored (many times) in
 * the middle, and to meet werror=stop.
 *
 * The disk is cut into 4 KiB blocks. depth=N slots (default 64) each write
 * a block, then read it back and check it, then take the next block (a
 * permutation of all blocks, round after round; a block is never written by
 * two slots at once). Every flushevery=N-th read back (default 16, 0 for
 * never) is followed by a flush from that slot: a flush keeps the host busy
 * for a while (fdatasync), so a snapshot usually finds requests the device
 * has taken and not finished, not only ones it never saw. The blocks hold
 * blkpattern.h's data with the caller's magic.
 *
 * Every completion is checked: it must belong to a request in flight (the
 * driver reports any other used id), carry a status the device wrote (one
 * still pending means the device returned it without finishing it, or
 * returned it twice) and be good. So after any number of snapshots and
 * restores, each request completes exactly once or the guest fails.
 *
 * It runs for ms=N (default 2000) of guest time (the TSC, which a snapshot
 * carries over), or until a 'q' arrives on COM1 (stdin of kvmini), then
 * stops taking new blocks, drains, flushes, and reads every block back to
 * compare it with the last write it made. Command line: depth=N, blocks=N
 * (use only the first N blocks), ms=N, flushevery=N, and the disk's own.
 *
 * Output (NAME is the disk's name): `NAME: running: B blocks, depth D` once
 * I/O is under way; at the end `NAME: W writes, R reads and F flushes
 * completed once each`, `NAME: flush ok`, `NAME: verified B blocks, gensum
 * 0x..` (the sum over blocks of (b + 1) * last g, which the host recomputes
 * from the image), and `NAME: done`.
 */
#ifndef GUEST_DISKSNAP_H
#define GUEST_DISKSNAP_H

#include "disk_drv.h"

/* The whole workload on open disk @d, blocks marked with @magic. CPL0.
 * Returns the exit status: 0 all good, 1 data mismatch, 2 I/O error,
 * timeout, a completion not in flight or twice, 3 setup failure. */
int disksnap_main(struct disk *d, const char magic[8]);

#endif
