// SPDX-License-Identifier: MIT
/*
 * The snapshot workload (guest/lib/disksnap.h) on one virtio-scsi LUN:
 * ctrl=N, lun=N (default 0 each), cdb=10|16 (READ/WRITE (10) and (16)
 * alternate by default; flushes are SYNCHRONIZE CACHE) and the driver
 * options, besides the workload's depth=, blocks=, ms=, flushevery=. Blocks
 * hold the magic "snapscsi"; the lines start with `snap-scsi:`
 * (tests/system/test_snap_scsi.py).
 */
#include "disksnap.h"

static struct disk disk;

int main(void)
{
	if (disk_open(&disk, &disk_scsi_ops, "snap-scsi"))
		return 3;
	return disksnap_main(&disk, "snapscsi");
}
