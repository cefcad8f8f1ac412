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
 * at CPL3; the workload itself is guest/lib/diskcopy.c, shared with scsicopy.
 *
 * Output: `blkcopy: copied B bytes in R requests, max in flight M`,
 * `blkcopy: flush status S`, `blkcopy: verified B bytes: match` (or
 * `MISMATCH at sector X`). Exit: 0 all matched, 1 mismatch, 2 I/O error
 * (a request failed, timed out, or the device needs a reset), 3 setup
 * failure.
 */
#include "diskcopy.h"
#include "guest.h"
#include "virtio_blk.h"

static struct vblk disk;
static struct vblk_req reqs[2 * DISKCOPY_MAX_DEPTH];

static int blk_submit(void *ctx, struct diskcopy_io *io)
{
	struct vblk_req *r = &reqs[io->id];

	*r = (struct vblk_req){.type = io->write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
			       .sector = io->sector,
			       .buf = io->buf,
			       .len = io->nsec * VBLK_SECTOR,
			       .seg = io->seg,
			       .user = io};
	return vblk_submit(&disk, r);
}

static struct diskcopy_io *blk_wait(void *ctx)
{
	struct vblk_req *r = vblk_wait(&disk, tsc_ms(VBLK_TIMEOUT_MS));

	if (!r) {
		printf("blkcopy: waiting for a completion failed: %d (device status 0x%x)\n",
		       disk.error, virtio_status(&disk.vd));
		return NULL;
	}
	return r->user;
}

static struct diskcopy_io *blk_reap(void *ctx)
{
	struct vblk_req *r = vblk_reap(&disk);

	return r ? r->user : NULL;
}

static bool blk_failed(void *ctx, const struct diskcopy_io *io)
{
	const struct vblk_req *r = &reqs[io->id];

	if (r->status == VIRTIO_BLK_S_OK)
		return false;
	printf("blkcopy: %s of %u sectors at %lu failed: status %u\n", io->write ? "write" : "read",
	       io->nsec, io->sector, r->status);
	return true;
}

static unsigned int blk_inflight(void *ctx)
{
	return vblk_inflight(&disk);
}

static int blk_flush(void *ctx)
{
	return vblk_has(&disk, VIRTIO_BLK_F_FLUSH) ? vblk_flush(&disk) : -ENOTSUP;
}

static const struct diskcopy_ops blk_ops = {
    .submit = blk_submit,
    .wait = blk_wait,
    .reap = blk_reap,
    .failed = blk_failed,
    .inflight = blk_inflight,
    .flush = blk_flush,
};

static struct diskcopy copy = {.name = "blkcopy", .ops = &blk_ops};

static long run(void *arg)
{
	return diskcopy_run(&copy, cmdline_has("verify_only"));
}

int main(void)
{
	uint64_t v = 0;

	cmdline_get_u64("disk", &v);
	if (vblk_open(&disk, v, "blkcopy"))
		return 3;
	copy.half = disk.capacity / 2;
	copy.max_segs = disk.max_segs;
	if (copy.half == 0) {
		printf("blkcopy: disk too small (%lu sectors)\n", disk.capacity);
		return 3;
	}
	if (vblk_has(&disk, VIRTIO_BLK_F_RO))
		printf("blkcopy: the device says it is read-only; writing anyway\n");
	if (diskcopy_setup(&copy))
		return 3;
	printf("blkcopy: copying %lu sectors, depth %u, requests up to %u sectors\n", copy.half,
	       copy.depth, copy.max_sectors);
	return user_call(run, NULL);
}
