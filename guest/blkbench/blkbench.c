// SPDX-License-Identifier: MIT
/*
 * The benchmark (guest/lib/diskbench.h) on a virtio-blk disk: disk=N
 * (default 0) and vblk_opts_from_cmdline's driver options, besides the
 * benchmark's sizes=, depths=, mb=, reqs=, mode=. Lines start with
 * `blkbench:` (scripts/bench/blk.py).
 */
#include "diskbench.h"

static struct disk disk;

int main(void)
{
	if (disk_open(&disk, &disk_blk_ops, "blkbench"))
		return 3;
	return diskbench_main(&disk);
}
