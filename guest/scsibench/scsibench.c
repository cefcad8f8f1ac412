// SPDX-License-Identifier: MIT
/*
 * The benchmark (guest/lib/diskbench.h) on one virtio-scsi LUN, with READ
 * (16)s (cdb=10 for READ (10)s): ctrl=N, lun=N (default 0 each) and the
 * driver options, besides the benchmark's sizes=, depths=, mb=, reqs=,
 * mode=. Lines start with `scsibench:` (scripts/bench/scsi.py).
 */
#include "diskbench.h"

static struct disk disk = {.u.scsi.cdb = 16};

int main(void)
{
	if (disk_open(&disk, &disk_scsi_ops, "scsibench"))
		return 3;
	return diskbench_main(&disk);
}
