// SPDX-License-Identifier: MIT
/*
 * The snapshot workload (guest/lib/disksnap.h) on a virtio-blk disk:
 * disk=N (default 0) and vblk_opts_from_cmdline's driver options, besides
 * the workload's depth=, blocks=, ms=, flushevery=. Blocks hold the magic
 * "snap-blk"; the lines start with `snap-blk:` (tests/system/test_snap_blk.py).
 */
#include "disksnap.h"

static struct disk disk;

int main(void)
{
	if (disk_open(&disk, &disk_blk_ops, "snap-blk"))
		return 3;
	return disksnap_main(&disk, "snap-blk");
}
