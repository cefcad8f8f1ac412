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
 * at CPL3.
 *
 * Output: `blkcopy: copied B bytes in R requests, max in flight M`,
 * `blkcopy: flush status S`, `blkcopy: verified B bytes: match` (or
 * `MISMATCH at sector X`). Exit: 0 all matched, 1 mismatch, 2 I/O error
 * (a request failed, timed out, or the device needs a reset), 3 setup
 * failure.
 */
#include "guest.h"
#include "virtio_blk.h"

#define MAX_DEPTH 64

enum state { IDLE, READING, WRITING, VERIFYING };

struct slot {
	enum state state;
	uint64_t sector; /* source sector (first half) */
	uint32_t nsec;
	unsigned int pending;  /* verify: reads not completed yet */
	bool ra_wait, rb_wait; /* prepared, not accepted by the ring yet */
	uint8_t *a, *b;	       /* copy uses a; verify reads the source into a, the copy into b */
	struct vblk_req ra, rb;
};

static struct vblk disk;
static struct slot slots[MAX_DEPTH];
static unsigned int depth = MAX_DEPTH;
static uint32_t max_sectors = 256;
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t half, next_sector, requests, max_inflight, bytes_copied;
static uint64_t mismatch_at = UINT64_MAX;
static int io_error;

static uint64_t rand64(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Next chunk of the first half: mixed sizes, never past the half. */
static uint32_t chunk_sectors(void)
{
	static const uint32_t sizes[] = {1, 2, 7, 8, 16, 31, 64, 100, 128, 255, 256};
	uint32_t n = sizes[rand64() % (sizeof(sizes) / sizeof(sizes[0]))];

	if (n > max_sectors)
		n = max_sectors;
	if (n > half - next_sector)
		n = half - next_sector;
	return n;
}

/* Mixed segmentation, within what the driver allows per request. */
static uint32_t segmentation(uint32_t len)
{
	static const uint32_t segs[] = {0, 4096, 1000};
	uint32_t seg = segs[rand64() % 3];

	if (seg && (len + seg - 1) / seg > disk.max_segs)
		seg = 0;
	return seg;
}

static void prepare(struct vblk_req *r, uint32_t type, uint64_t sector, void *buf, uint32_t nsec,
		    struct slot *s)
{
	*r = (struct vblk_req){
	    .type = type, .sector = sector, .buf = buf, .len = nsec * VBLK_SECTOR, .user = s};
	r->seg = segmentation(r->len);
}

/* Submit @r if *@wait; false if the ring has no room now (retry after reaping). */
static bool submit(struct vblk_req *r, bool *wait)
{
	int e;

	if (!*wait)
		return true;
	e = vblk_submit(&disk, r);
	if (e == -ENOSPC && vblk_inflight(&disk) > 0)
		return false;
	if (e) {
		printf("blkcopy: submit failed: %d\n", e);
		io_error = 1;
		return false;
	}
	*wait = false;
	requests++;
	if (vblk_inflight(&disk) > max_inflight)
		max_inflight = vblk_inflight(&disk);
	return true;
}

/* Submit every prepared request, in slot order, until the ring is full. */
static void submit_all(void)
{
	for (unsigned int i = 0; i < depth && !io_error; i++)
		if (!submit(&slots[i].ra, &slots[i].ra_wait) ||
		    !submit(&slots[i].rb, &slots[i].rb_wait))
			return;
}

static bool failed(const struct vblk_req *r)
{
	if (r->status == VIRTIO_BLK_S_OK)
		return false;
	printf("blkcopy: %s of %u sectors at %lu failed: status %u\n",
	       r->type == VIRTIO_BLK_T_IN ? "read" : "write", r->len / VBLK_SECTOR, r->sector,
	       r->status);
	io_error = 1;
	return true;
}

/* Wait for at least one completion and hand each to @done. */
static void reap(void (*done)(struct slot *s, struct vblk_req *r))
{
	struct vblk_req *r = vblk_wait(&disk, tsc_ms(VBLK_TIMEOUT_MS));

	if (!r) {
		printf("blkcopy: waiting for a completion failed: %d (device status 0x%x)\n",
		       disk.error, virtio_status(&disk.vd));
		io_error = 1;
		return;
	}
	do {
		if (!failed(r))
			done(r->user, r);
	} while (!io_error && (r = vblk_reap(&disk)));
}

static bool busy(void)
{
	for (unsigned int i = 0; i < depth; i++)
		if (slots[i].state != IDLE)
			return true;
	return false;
}

static void copy_done(struct slot *s, struct vblk_req *r)
{
	if (s->state == READING) {
		prepare(&s->ra, VIRTIO_BLK_T_OUT, s->sector + half, s->a, s->nsec, s);
		s->ra_wait = true;
		s->state = WRITING;
	} else {
		bytes_copied += (uint64_t)s->nsec * VBLK_SECTOR;
		s->state = IDLE;
	}
}

static void verify_done(struct slot *s, struct vblk_req *r)
{
	if (--s->pending)
		return;
	for (uint32_t k = 0; k < s->nsec; k++) {
		if (memcmp(s->a + k * VBLK_SECTOR, s->b + k * VBLK_SECTOR, VBLK_SECTOR)) {
			if (s->sector + half + k < mismatch_at)
				mismatch_at = s->sector + half + k;
			break;
		}
	}
	s->state = IDLE;
}

/* Give every idle slot the next chunk: a read (copy), or two reads (verify). */
static void assign(bool verify)
{
	for (unsigned int i = 0; i < depth && next_sector < half; i++) {
		struct slot *s = &slots[i];
		if (s->state != IDLE)
			continue;
		s->sector = next_sector;
		s->nsec = chunk_sectors();
		next_sector += s->nsec;
		prepare(&s->ra, VIRTIO_BLK_T_IN, s->sector, s->a, s->nsec, s);
		s->ra_wait = true;
		if (verify) {
			prepare(&s->rb, VIRTIO_BLK_T_IN, s->sector + half, s->b, s->nsec, s);
			s->rb_wait = true;
			s->pending = 2;
			s->state = VERIFYING;
		} else {
			s->state = READING;
		}
	}
}

/* Run one pass over the first half (copy or verify) until every slot is idle. */
static void pass(bool verify)
{
	next_sector = 0;
	while (!io_error && (next_sector < half || busy())) {
		assign(verify);
		submit_all();
		if (!io_error)
			reap(verify ? verify_done : copy_done);
	}
}

static long run(void *arg)
{
	int s;

	if (cmdline_has("verify_only")) {
		printf("blkcopy: verify_only: comparing the halves without copying\n");
		goto verify;
	}
	pass(false);
	if (io_error)
		return 2;
	printf("blkcopy: copied %lu bytes in %lu requests, max in flight %lu\n", bytes_copied,
	       requests, max_inflight);
	if (vblk_has(&disk, VIRTIO_BLK_F_FLUSH)) {
		s = vblk_flush(&disk);
		printf("blkcopy: flush status %d\n", s);
		if (s != VIRTIO_BLK_S_OK)
			return 2;
	} else {
		printf("blkcopy: flush not offered by the device: skipped\n");
	}
verify:
	pass(true);
	if (io_error)
		return 2;
	if (mismatch_at != UINT64_MAX) {
		printf("blkcopy: verified %lu bytes: MISMATCH at sector %lu\n", half * VBLK_SECTOR,
		       mismatch_at);
		return 1;
	}
	printf("blkcopy: verified %lu bytes: match\n", half * VBLK_SECTOR);
	return 0;
}

int main(void)
{
	uint64_t v = 0;

	cmdline_get_u64("disk", &v);
	if (vblk_open(&disk, v, "blkcopy"))
		return 3;
	if (!cmdline_get_u64("depth", &v) && v >= 1 && v <= MAX_DEPTH)
		depth = v;
	if (!cmdline_get_u64("maxkb", &v) && v >= 1 && v <= 1024)
		max_sectors = v * 2;
	if (!cmdline_get_u64("seed", &v) && v)
		rng = v;
	half = disk.capacity / 2;
	if (half == 0) {
		printf("blkcopy: disk too small (%lu sectors)\n", disk.capacity);
		return 3;
	}
	if (vblk_has(&disk, VIRTIO_BLK_F_RO))
		printf("blkcopy: the device says it is read-only; writing anyway\n");
	for (unsigned int i = 0; i < depth; i++) {
		slots[i].a = mem_alloc(max_sectors * VBLK_SECTOR, 4096);
		slots[i].b = mem_alloc(max_sectors * VBLK_SECTOR, 4096);
		if (!slots[i].a || !slots[i].b) {
			printf("blkcopy: out of memory for %u buffers of %u KiB\n", 2 * depth,
			       max_sectors / 2);
			return 3;
		}
	}
	printf("blkcopy: copying %lu sectors, depth %u, requests up to %u sectors\n", half, depth,
	       max_sectors);
	return user_call(run, NULL);
}
