// SPDX-License-Identifier: MIT
/*
 * Sequential read throughput of a virtio-blk disk: for each request size
 * (sizes=, KiB, default 4,64,1024) and queue depth (depths=, default 1,16),
 * reads from sector 0 onwards, at most mb=N MiB (default 64) and reqs=N
 * requests (default 4096) per point, wrapping around the disk if it is
 * smaller. Completion by polling the used ring at CPL3 (mode=poll, the
 * default), by MSI-X interrupt (mode=irq), or both in turn (mode=both).
 * Plus disk=N and the driver options of vblk_opts_from_cmdline.
 *
 * Timing: TSC, at the rate kvmclock gives (no kvmclock: ticks only). The
 * I/O loop runs at CPL3. One line per point, machine-readable:
 *   blkbench: mode=poll bs=4096 qd=1 reqs=4096 bytes=16777216 ns=N
 *             MBps=X.XX iops=N kicks=N irq_waits=N
 * (one line; MB = 10^6 bytes), then `blkbench: done`. Exit 0, 2 on an I/O
 * error, 3 if the disk could not be set up.
 */
#include "guest.h"
#include "virtio_blk.h"

#define MAX_DEPTH  64
#define MAX_POINTS 8

static struct vblk disk;
static uint64_t khz, max_bytes = 64ull << 20, max_reqs = 4096;
static uint32_t sizes[MAX_POINTS] = {4, 64, 1024}, depths[MAX_POINTS] = {1, 16};
static unsigned int nsizes = 3, ndepths = 2;
static struct vblk_req reqs[MAX_DEPTH];
static uint8_t *bufs[MAX_DEPTH];

struct point {
	const char *mode;
	uint32_t bs, qd;
};

static int run_point(const struct point *p)
{
	uint64_t cap = disk.capacity * VBLK_SECTOR, total = max_bytes < cap ? max_bytes : cap;
	uint64_t n = total / p->bs, done = 0, sent = 0, sector = 0;
	uint64_t kicks0 = disk.vq.kicks, waits0 = disk.irq_waits;
	unsigned int free_n = p->qd, free_slots[MAX_DEPTH];

	if (n > max_reqs)
		n = max_reqs;
	if (n == 0) {
		printf("blkbench: mode=%s bs=%u qd=%u skipped: disk smaller than one request\n",
		       p->mode, p->bs, p->qd);
		return 0;
	}
	for (unsigned int i = 0; i < p->qd; i++)
		free_slots[i] = i;
	uint64_t t0 = rdtsc();
	while (done < n) {
		while (free_n && sent < n) {
			unsigned int i = free_slots[--free_n];
			if (sector + p->bs / VBLK_SECTOR > disk.capacity)
				sector = 0;
			reqs[i] = (struct vblk_req){.type = VIRTIO_BLK_T_IN,
						    .sector = sector,
						    .buf = bufs[i],
						    .len = p->bs};
			int e = vblk_submit(&disk, &reqs[i]);
			if (e) {
				printf("blkbench: submit failed: %d\n", e);
				return 2;
			}
			sector += p->bs / VBLK_SECTOR;
			sent++;
		}
		struct vblk_req *r = vblk_wait(&disk, tsc_ms(VBLK_TIMEOUT_MS));
		if (!r) {
			printf("blkbench: no completion: %d (device status 0x%x)\n", disk.error,
			       virtio_status(&disk.vd));
			return 2;
		}
		do {
			if (r->status != VIRTIO_BLK_S_OK) {
				printf("blkbench: read at %lu failed: status %u\n", r->sector,
				       r->status);
				return 2;
			}
			free_slots[free_n++] = r - reqs;
			done++;
		} while ((r = vblk_reap(&disk)));
	}
	uint64_t ticks = rdtsc() - t0, bytes = n * p->bs;
	printf("blkbench: mode=%s bs=%u qd=%u reqs=%lu bytes=%lu", p->mode, p->bs, p->qd, n, bytes);
	if (khz) {
		uint64_t ns = tsc_to_ns(ticks, khz);
		uint64_t mbps100 = ns ? bytes * 100000 / ns : 0; /* MB/s x 100 */
		printf(" ns=%lu MBps=%lu.%02lu iops=%lu", ns, mbps100 / 100, mbps100 % 100,
		       ns ? n * 1000000000 / ns : 0);
	} else {
		printf(" ticks=%lu", ticks);
	}
	printf(" kicks=%lu irq_waits=%lu\n", disk.vq.kicks - kicks0, disk.irq_waits - waits0);
	return 0;
}

static long run(void *arg)
{
	static const char *const modes[] = {"poll", "irq"};
	const char *m;
	size_t len;
	unsigned int first = 0, last = 0;

	if (!cmdline_get("mode", &m, &len)) {
		if (len == 3 && !strncmp(m, "irq", 3))
			first = last = 1;
		else if (len == 4 && !strncmp(m, "both", 4))
			last = 1;
	}
	for (unsigned int mi = first; mi <= last; mi++) {
		if (disk.opts.irq != (mi == 1)) {
			disk.opts.irq = mi == 1;
			int e = vblk_restart(&disk);
			if (e) {
				printf("blkbench: restart for mode %s failed: %d\n", modes[mi], e);
				return 3;
			}
		}
		for (unsigned int si = 0; si < nsizes; si++)
			for (unsigned int di = 0; di < ndepths; di++) {
				struct point p = {modes[mi], sizes[si] * 1024, depths[di]};
				int e = run_point(&p);
				if (e)
					return e;
			}
	}
	printf("blkbench: done\n");
	return 0;
}

int main(void)
{
	uint64_t v = 0;
	uint32_t max_bs = 0, max_qd = 0;

	cmdline_get_u64("disk", &v);
	if (vblk_open(&disk, v, "blkbench"))
		return 3;
	cmdline_u32_list("sizes", sizes, &nsizes, MAX_POINTS, 4096);
	cmdline_u32_list("depths", depths, &ndepths, MAX_POINTS, MAX_DEPTH);
	if (!cmdline_get_u64("mb", &v) && v)
		max_bytes = v << 20;
	if (!cmdline_get_u64("reqs", &v) && v)
		max_reqs = v;
	for (unsigned int i = 0; i < nsizes; i++)
		max_bs = sizes[i] > max_bs ? sizes[i] : max_bs;
	for (unsigned int i = 0; i < ndepths; i++)
		max_qd = depths[i] > max_qd ? depths[i] : max_qd;
	for (unsigned int i = 0; i < max_qd; i++) {
		bufs[i] = mem_alloc(max_bs * 1024, 4096);
		if (!bufs[i]) {
			printf("blkbench: out of memory for %u buffers of %u KiB\n", max_qd,
			       max_bs);
			return 3;
		}
	}
	khz = tsc_khz();
	printf("blkbench: tsc_khz=%lu\n", khz);
	return user_call(run, NULL);
}
