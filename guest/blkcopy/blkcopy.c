// SPDX-License-Identifier: MIT
/*
 * Copies the first half of a virtio-blk disk onto its second half, with
 * reads and writes of mixed sizes (1 to 256 sectors) and mixed
 * segmentation (one descriptor, 4 KiB pages, odd 1000-byte pieces), up to
 * depth=N (default and maximum 64) requests in flight; then FLUSH; then
 * reads both halves back and compares them.
 *
 * Command line: disk=N (default 0), depth=N, maxkb=N (largest request,
 * default 128), seed=N, verify_only (compare the halves, copy nothing), and
 * the driver options of vblk_opts_from_cmdline
 * (irq, qsize=, segs=, noindirect, noevent_idx). The copy and the check run
 * at CPL3; the workload itself is guest/lib/diskcopy.c, shared with scsicopy,
 * over disk_drv.h's disk_blk_ops.
 *
 * Output: `blkcopy: copied B bytes in R requests, max in flight M`,
 * `blkcopy: flush status S`, `blkcopy: verified B bytes: match` (or
 * `MISMATCH at sector X`). Exit: 0 all matched, 1 mismatch, 2 I/O error
 * (a request failed, timed out, or the device needs a reset), 3 setup
 * failure.
 */
#include "diskcopy.h"
#include "guest.h"

static struct disk disk;
static struct diskcopy copy = {.disk = &disk};

static long run(void *arg)
{
	return diskcopy_run(&copy, cmdline_has("verify_only"));
}

int main(void)
{
	if (disk_open(&disk, &disk_blk_ops, "blkcopy"))
		return 3;
	copy.half = disk.sectors / 2;
	if (copy.half == 0) {
		printf("blkcopy: disk too small (%lu sectors)\n", disk.sectors);
		return 3;
	}
	if (vblk_has(&disk.u.blk, VIRTIO_BLK_F_RO))
		printf("blkcopy: the device says it is read-only; writing anyway\n");
	if (diskcopy_setup(&copy))
		return 3;
	printf("blkcopy: copying %lu sectors, depth %u, requests up to %u sectors\n", copy.half,
	       copy.depth, copy.max_sectors);
	return user_call(run, NULL);
}
