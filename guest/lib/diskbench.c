// SPDX-License-Identifier: MIT
/* The benchmark over disk_drv.h (diskbench.h). */
#include "diskbench.h"
#include "guest.h"

#define MAX_DEPTH  64
#define MAX_POINTS 8

static struct disk *disk;
static uint64_t khz, max_bytes = 64ull << 20, max_reqs = 4096;
static uint32_t sizes[MAX_POINTS] = {4, 64, 1024}, depths[MAX_POINTS] = {1, 16};
static unsigned int nsizes = 3, ndepths = 2;
static struct disk_req reqs[MAX_DEPTH];
static uint8_t *bufs[MAX_DEPTH];

struct point {
	const char *mode;
	uint32_t bs, qd;
};

static int run_point(const struct point *p)
{
	uint64_t cap = disk->sectors * DISK_SECTOR, total = max_bytes < cap ? max_bytes : cap;
	uint64_t n = total / p->bs, done = 0, sent = 0, sector = 0;
	uint64_t kicks0 = disk->vq->kicks, waits0 = *disk->irq_waits;
	unsigned int free_n = p->qd, free_slots[MAX_DEPTH];

	if (n > max_reqs)
		n = max_reqs;
	if (n == 0) {
		printf("%s: mode=%s bs=%u qd=%u skipped: disk smaller than one request\n",
		       disk->name, p->mode, p->bs, p->qd);
		return 0;
	}
	for (unsigned int i = 0; i < p->qd; i++)
		free_slots[i] = i;
	uint64_t t0 = rdtsc();
	while (done < n) {
		while (free_n && sent < n) {
			unsigned int i = free_slots[--free_n];
			if (sector + p->bs / DISK_SECTOR > disk->sectors)
				sector = 0;
			/* Field by field: the driver's part need not be cleared. */
			reqs[i].op = DISK_READ;
			reqs[i].sector = sector;
			reqs[i].nsec = p->bs / DISK_SECTOR;
			reqs[i].buf = bufs[i];
			int e = disk_submit(disk, &reqs[i]);
			if (e) {
				printf("%s: submit failed: %d\n", disk->name, e);
				return 2;
			}
			sector += p->bs / DISK_SECTOR;
			sent++;
		}
		struct disk_req *r = disk_wait(disk, tsc_ms(DISK_TIMEOUT_MS));
		if (!r)
			return 2;
		do {
			if (disk_result(disk, r))
				return 2;
			free_slots[free_n++] = r - reqs;
			done++;
		} while ((r = disk_reap(disk)));
	}
	uint64_t ticks = rdtsc() - t0, bytes = n * p->bs;
	printf("%s: mode=%s bs=%u qd=%u reqs=%lu bytes=%lu", disk->name, p->mode, p->bs, p->qd, n,
	       bytes);
	if (khz) {
		uint64_t ns = tsc_to_ns(ticks, khz);
		uint64_t mbps100 = ns ? bytes * 100000 / ns : 0; /* MB/s x 100 */
		printf(" ns=%lu MBps=%lu.%02lu iops=%lu", ns, mbps100 / 100, mbps100 % 100,
		       ns ? n * 1000000000 / ns : 0);
	} else {
		printf(" ticks=%lu", ticks);
	}
	printf(" kicks=%lu irq_waits=%lu\n", disk->vq->kicks - kicks0, *disk->irq_waits - waits0);
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
		if (disk->opts->irq != (mi == 1)) {
			disk->opts->irq = mi == 1;
			int e = disk->ops->restart(disk);
			if (e) {
				printf("%s: restart for mode %s failed: %d\n", disk->name,
				       modes[mi], e);
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
	printf("%s: done\n", disk->name);
	return 0;
}

int diskbench_main(struct disk *d)
{
	uint64_t v = 0;
	uint32_t max_bs = 0, max_qd = 0;

	disk = d;
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
			printf("%s: out of memory for %u buffers of %u KiB\n", disk->name, max_qd,
			       max_bs);
			return 3;
		}
	}
	khz = tsc_khz();
	printf("%s: tsc_khz=%lu\n", disk->name, khz);
	return user_call(run, NULL);
}
