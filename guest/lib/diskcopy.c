// SPDX-License-Identifier: MIT
/* The blkcopy workload over disk_drv.h (diskcopy.h). */
#include "diskcopy.h"
#include "guest.h"

enum state { IDLE, READING, WRITING, VERIFYING };

struct diskcopy_slot {
	enum state state;
	uint64_t sector; /* source sector (first half) */
	uint32_t nsec;
	unsigned int pending;  /* verify: reads not completed yet */
	bool ra_wait, rb_wait; /* prepared, not accepted by the ring yet */
	uint8_t *a, *b;	       /* copy uses a; verify reads the source into a, the copy into b */
	struct disk_req ra, rb;
};

static uint64_t rand64(struct diskcopy *c)
{
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	return c->rng;
}

int diskcopy_setup(struct diskcopy *c)
{
	uint64_t v;

	if (!c->depth || c->depth > DISKCOPY_MAX_DEPTH)
		c->depth = DISKCOPY_MAX_DEPTH;
	if (!c->max_sectors)
		c->max_sectors = 256;
	if (!c->rng)
		c->rng = 0x9e3779b97f4a7c15ull;
	if (!cmdline_get_u64("depth", &v) && v >= 1 && v <= DISKCOPY_MAX_DEPTH)
		c->depth = v;
	if (!cmdline_get_u64("maxkb", &v) && v >= 1 && v <= 1024)
		c->max_sectors = v * 2;
	if (!cmdline_get_u64("seed", &v) && v)
		c->rng = v;
	c->mismatch_at = UINT64_MAX;
	c->slots = mem_alloc(c->depth * sizeof(*c->slots), 64);
	if (!c->slots)
		goto oom;
	memset(c->slots, 0, c->depth * sizeof(*c->slots));
	for (unsigned int i = 0; i < c->depth; i++) {
		struct diskcopy_slot *s = &c->slots[i];
		s->a = mem_alloc(c->max_sectors * DISKCOPY_SECTOR, 4096);
		s->b = mem_alloc(c->max_sectors * DISKCOPY_SECTOR, 4096);
		if (!s->a || !s->b)
			goto oom;
		s->ra.user = s;
		s->rb.user = s;
	}
	return 0;
oom:
	printf("%s: out of memory for %u buffers of %u KiB\n", c->disk->name, 2 * c->depth,
	       c->max_sectors / 2);
	return -ENOMEM;
}

/* Next chunk of the first half: mixed sizes, never past the half. */
static uint32_t chunk_sectors(struct diskcopy *c)
{
	static const uint32_t sizes[] = {1, 2, 7, 8, 16, 31, 64, 100, 128, 255, 256};
	uint32_t n = sizes[rand64(c) % (sizeof(sizes) / sizeof(sizes[0]))];

	if (n > c->max_sectors)
		n = c->max_sectors;
	if (n > c->half - c->next_sector)
		n = c->half - c->next_sector;
	return n;
}

static void prepare(struct diskcopy *c, struct disk_req *io, bool write, uint64_t sector,
		    uint8_t *buf, uint32_t nsec)
{
	static const uint32_t segs[] = {0, 4096, 1000};
	uint32_t len = nsec * DISKCOPY_SECTOR, seg = segs[rand64(c) % 3];

	/* Mixed segmentation, within what the driver allows per request. */
	if (seg && (len + seg - 1) / seg > c->disk->max_segs)
		seg = 0;
	io->op = write ? DISK_WRITE : DISK_READ;
	io->sector = sector;
	io->nsec = nsec;
	io->buf = buf;
	io->seg = seg;
}

/* Submit @io if *@wait; false if the ring has no room now (retry after reaping). */
static bool submit(struct diskcopy *c, struct disk_req *io, bool *wait)
{
	int e;

	if (!*wait)
		return true;
	e = disk_submit(c->disk, io);
	if (e == -ENOSPC && disk_inflight(c->disk) > 0)
		return false;
	if (e) {
		printf("%s: submit failed: %d\n", c->disk->name, e);
		c->io_error = 1;
		return false;
	}
	*wait = false;
	c->requests++;
	if (disk_inflight(c->disk) > c->max_inflight)
		c->max_inflight = disk_inflight(c->disk);
	return true;
}

/* Submit every prepared request, in slot order, until the ring is full. */
static void submit_all(struct diskcopy *c)
{
	for (unsigned int i = 0; i < c->depth && !c->io_error; i++) {
		struct diskcopy_slot *s = &c->slots[i];
		if (!submit(c, &s->ra, &s->ra_wait) || !submit(c, &s->rb, &s->rb_wait))
			return;
	}
}

static void copy_done(struct diskcopy *c, struct diskcopy_slot *s)
{
	if (s->state == READING) {
		prepare(c, &s->ra, true, s->sector + c->half, s->a, s->nsec);
		s->ra_wait = true;
		s->state = WRITING;
	} else {
		c->bytes_copied += (uint64_t)s->nsec * DISKCOPY_SECTOR;
		s->state = IDLE;
	}
}

static void verify_done(struct diskcopy *c, struct diskcopy_slot *s)
{
	if (--s->pending)
		return;
	for (uint32_t k = 0; k < s->nsec; k++) {
		if (memcmp(s->a + k * DISKCOPY_SECTOR, s->b + k * DISKCOPY_SECTOR,
			   DISKCOPY_SECTOR)) {
			if (s->sector + c->half + k < c->mismatch_at)
				c->mismatch_at = s->sector + c->half + k;
			break;
		}
	}
	s->state = IDLE;
}

/* Wait for at least one completion and hand each on. */
static void reap(struct diskcopy *c, bool verify)
{
	struct disk_req *io = disk_wait(c->disk, tsc_ms(DISK_TIMEOUT_MS));

	if (!io) {
		c->io_error = 1;
		return;
	}
	do {
		if (disk_result(c->disk, io))
			c->io_error = 1;
		else if (verify)
			verify_done(c, io->user);
		else
			copy_done(c, io->user);
	} while (!c->io_error && (io = disk_reap(c->disk)));
}

static bool busy(const struct diskcopy *c)
{
	for (unsigned int i = 0; i < c->depth; i++)
		if (c->slots[i].state != IDLE)
			return true;
	return false;
}

/* Give every idle slot the next chunk: a read (copy), or two reads (verify). */
static void assign(struct diskcopy *c, bool verify)
{
	for (unsigned int i = 0; i < c->depth && c->next_sector < c->half; i++) {
		struct diskcopy_slot *s = &c->slots[i];
		if (s->state != IDLE)
			continue;
		s->sector = c->next_sector;
		s->nsec = chunk_sectors(c);
		c->next_sector += s->nsec;
		prepare(c, &s->ra, false, s->sector, s->a, s->nsec);
		s->ra_wait = true;
		if (verify) {
			prepare(c, &s->rb, false, s->sector + c->half, s->b, s->nsec);
			s->rb_wait = true;
			s->pending = 2;
			s->state = VERIFYING;
		} else {
			s->state = READING;
		}
	}
}

/* Run one pass over the first half (copy or verify) until every slot is idle. */
static void pass(struct diskcopy *c, bool verify)
{
	c->next_sector = 0;
	while (!c->io_error && (c->next_sector < c->half || busy(c))) {
		assign(c, verify);
		submit_all(c);
		if (!c->io_error)
			reap(c, verify);
	}
}

long diskcopy_run(struct diskcopy *c, bool verify_only)
{
	int s;

	if (verify_only) {
		printf("%s: verify_only: comparing the halves without copying\n", c->disk->name);
		goto verify;
	}
	pass(c, false);
	if (c->io_error)
		return 2;
	printf("%s: copied %lu bytes in %lu requests, max in flight %lu\n", c->disk->name,
	       c->bytes_copied, c->requests, c->max_inflight);
	if (!c->disk->can_flush) {
		printf("%s: flush not offered by the device: skipped\n", c->disk->name);
	} else {
		s = c->disk->ops->flush(c->disk);
		printf("%s: flush status %d\n", c->disk->name, s);
		if (s)
			return 2;
	}
verify:
	pass(c, true);
	if (c->io_error)
		return 2;
	if (c->mismatch_at != UINT64_MAX) {
		printf("%s: verified %lu bytes: MISMATCH at sector %lu\n", c->disk->name,
		       c->half * DISKCOPY_SECTOR, c->mismatch_at);
		return 1;
	}
	printf("%s: verified %lu bytes: match\n", c->disk->name, c->half * DISKCOPY_SECTOR);
	return 0;
}
