// SPDX-License-Identifier: MIT
/*
 * Keeps many requests in flight on a virtio-blk disk, with contents both
 * sides can check, for as long as it runs; meant to be snapshotted and
 * restored (many times) in the middle, and to meet werror=stop.
 *
 * The disk is cut into 4 KiB blocks. depth=N slots (default 64) each write
 * a block, then read it back and check it, then take the next block (a
 * permutation of all blocks, round after round; a block is never written by
 * two slots at once). Every flushevery=N-th read back (default 16, 0 for
 * never) is followed by a FLUSH from that slot: a flush keeps the host busy
 * for a while (fdatasync), so a snapshot usually finds requests the device
 * has taken and not finished, not only ones it never saw. Write number g of block b (g = 1, 2, ...)
 * gives each sector k of it: "snap-blk" (8 bytes), b, g, 8b + k (little-endian 64-bit words), then
 * 480 bytes of (131b + 7g + k) & 0xff. A block never written reads as zeroes (a fresh image).
 *
 * Every completion is checked: it must belong to a request in flight (the
 * driver reports any other used id), carry a status the device wrote
 * (VBLK_S_PENDING means the device returned it without finishing it, or
 * returned it twice) and be OK. So after any number of snapshots and
 * restores, each request completes exactly once or the guest fails.
 *
 * It runs for ms=N (default 2000) of guest time (the TSC, which a snapshot
 * carries over), or until a 'q' arrives on COM1 (stdin of kvmini), then
 * stops taking new blocks, drains, FLUSHes, and reads every block back to
 * compare it with the last write it made. Command line: disk=N, depth=N,
 * blocks=N (use only the first N blocks), ms=N, flushevery=N, and
 * vblk_opts_from_cmdline's driver options.
 *
 * Output: `snap-blk: running: B blocks, depth D` once I/O is under way;
 * at the end `snap-blk: W writes, R reads and F flushes completed once
 * each`, `snap-blk:
 * flush ok`, `snap-blk: verified B blocks, gensum 0x..` (the sum over blocks
 * of (b + 1) * last g, which the host recomputes from the image), and
 * `snap-blk: done`. Exit: 0 all good, 1 data mismatch, 2 I/O error,
 * timeout, a completion not in flight or twice, 3 setup failure.
 */
#include "blkpattern.h"
#include "guest.h"
#include "virtio_blk.h"

#define BLOCK	       4096u
#define SECTORS	       (BLOCK / VBLK_SECTOR)
#define MAX_DEPTH      64
#define WAIT_MS	       60000 /* a completion may take a while under werror=stop */
#define UART_CHECK_MS  20
#define COM1_LSR       (COM1_PORT + 5)
#define LSR_DATA_READY 0x01

enum state { IDLE, WRITING, READING, FLUSHING };

struct slot {
	enum state state;
	bool unsubmitted; /* prepared, the ring had no room yet */
	uint64_t block, gen;
	uint8_t *buf;
	struct vblk_req req;
};

static struct vblk disk;
static struct slot slots[MAX_DEPTH];
static unsigned int depth = MAX_DEPTH;
static uint64_t nblocks, cursor, stride;
static uint64_t *gens; /* last generation written to each block (0: never) */
static uint8_t *busy;  /* a slot owns the block */
static uint64_t writes, reads, flushes, inflight, flush_every = 16;
static int failure; /* exit status once something went wrong */

static void fail(int status, const char *what, uint64_t b)
{
	if (!failure) {
		printf("snap-blk: %s (block %lu)\n", what, b);
		failure = status;
	}
}

/* Queue @s's request if it is waiting for room in the ring. */
static void submit(struct slot *s)
{
	int e;

	if (!s->unsubmitted)
		return;
	e = vblk_submit(&disk, &s->req);
	if (e == -ENOSPC && inflight > 0)
		return; /* after the next completion */
	if (e) {
		printf("snap-blk: submit failed: %d\n", e);
		failure = 2;
		return;
	}
	s->unsubmitted = false;
	inflight++;
}

static void start(struct slot *s, enum state st)
{
	static const uint32_t type[] = {[WRITING] = VIRTIO_BLK_T_OUT,
					[READING] = VIRTIO_BLK_T_IN,
					[FLUSHING] = VIRTIO_BLK_T_FLUSH};

	s->req = (struct vblk_req){.type = type[st], .user = s};
	if (st != FLUSHING) {
		s->req.sector = s->block * SECTORS;
		s->req.buf = s->buf;
		s->req.len = BLOCK;
	}
	s->state = st;
	s->unsubmitted = true;
	submit(s);
}

/* The next block no slot owns (a permutation of all blocks, round after round). */
static bool next_block(uint64_t *b)
{
	for (uint64_t tries = 0; tries < nblocks; tries++) {
		uint64_t c = (cursor++ * stride) % nblocks;

		if (!busy[c]) {
			*b = c;
			return true;
		}
	}
	return false;
}

static void assign(void)
{
	for (unsigned int i = 0; i < depth && !failure; i++) {
		struct slot *s = &slots[i];

		if (s->state != IDLE || !next_block(&s->block))
			continue;
		busy[s->block] = 1;
		s->gen = gens[s->block] + 1;
		blkpattern_fill(s->buf, "snap-blk", SECTORS, s->block, s->gen);
		start(s, WRITING);
	}
}

static void complete(struct vblk_req *r)
{
	struct slot *s = r->user;

	inflight--;
	if (r->status == VBLK_S_PENDING || s->state == IDLE || s->unsubmitted) {
		fail(2, "a request completed that the device had not finished (twice?)", s->block);
		return;
	}
	if (r->status != VIRTIO_BLK_S_OK) {
		fail(2,
		     s->state == WRITING   ? "write failed"
		     : s->state == READING ? "read failed"
					   : "flush failed",
		     s->block);
		return;
	}
	switch (s->state) {
	case WRITING:
		writes++;
		gens[s->block] = s->gen;
		memset(s->buf, 0, BLOCK);
		start(s, READING);
		return;
	case READING:
		reads++;
		if (!blkpattern_check(s->buf, "snap-blk", SECTORS, s->block, s->gen))
			fail(1, "read back something else than was written", s->block);
		busy[s->block] = 0;
		if (flush_every && reads % flush_every == 0) {
			start(s, FLUSHING);
			return;
		}
		break;
	default:
		flushes++;
		break;
	}
	s->state = IDLE;
}

/* At CPL0 (kernel_call): has a 'q' arrived on COM1? */
static long uart_quit(void *arg)
{
	(void)arg;
	while (inb(COM1_LSR) & LSR_DATA_READY)
		if (inb(COM1_PORT) == 'q')
			return 1;
	return 0;
}

static long run(void *arg)
{
	uint64_t ms = *(uint64_t *)arg;
	uint64_t now = rdtsc(), deadline = now + tsc_ms(ms), next_uart = now;
	bool stopping = false;

	printf("snap-blk: running: %lu blocks, depth %u\n", nblocks, depth);
	while (!failure) {
		now = rdtsc();
		if (!stopping && now >= next_uart) {
			stopping = now >= deadline || kernel_call(uart_quit, NULL);
			next_uart = now + tsc_ms(UART_CHECK_MS);
		}
		if (!stopping)
			assign();
		for (unsigned int i = 0; i < depth && !failure; i++)
			submit(&slots[i]);
		if (inflight == 0)
			break;
		struct vblk_req *r = vblk_wait(&disk, tsc_ms(WAIT_MS));
		if (!r) {
			printf("snap-blk: waiting for a completion failed: %d (device status "
			       "0x%x)\n",
			       disk.error, virtio_status(&disk.vd));
			failure = 2;
			break;
		}
		do
			complete(r);
		while (!failure && (r = vblk_reap(&disk)));
		if (disk.vq.error) {
			printf("snap-blk: the device returned a request that was not in flight\n");
			failure = 2;
		}
	}
	if (failure)
		return failure;
	printf("snap-blk: %lu writes, %lu reads and %lu flushes completed once each\n", writes,
	       reads, flushes);
	return 0;
}

/* After the run: every block as its last write left it. At CPL3. */
static long verify(void *arg)
{
	uint64_t gensum = 0;
	uint8_t *buf = slots[0].buf;

	(void)arg;
	for (uint64_t b = 0; b < nblocks; b++) {
		int st = vblk_read(&disk, b * SECTORS, buf, BLOCK);

		if (st != VIRTIO_BLK_S_OK) {
			printf("snap-blk: verify: read of block %lu: %d\n", b, st);
			return 2;
		}
		if (!blkpattern_check(buf, "snap-blk", SECTORS, b, gens[b])) {
			printf("snap-blk: verify: block %lu does not hold write %lu\n", b, gens[b]);
			return 1;
		}
		gensum += (b + 1) * gens[b];
	}
	printf("snap-blk: verified %lu blocks, gensum 0x%lx\n", nblocks, gensum);
	return 0;
}

int main(void)
{
	uint64_t v = 0, ms = 2000;
	long r;

	cmdline_get_u64("disk", &v);
	if (vblk_open(&disk, v, "snap-blk"))
		return 3;
	if (!cmdline_get_u64("depth", &v) && v >= 1 && v <= MAX_DEPTH)
		depth = v;
	cmdline_get_u64("ms", &ms);
	cmdline_get_u64("flushevery", &flush_every);
	nblocks = disk.capacity / SECTORS;
	if (!cmdline_get_u64("blocks", &v) && v >= 1 && v < nblocks)
		nblocks = v;
	if (nblocks < depth) {
		printf("snap-blk: %lu blocks is fewer than depth %u\n", nblocks, depth);
		return 3;
	}
	/* An odd stride walks every block of a power-of-two count; for other
	 * counts, 1 does. */
	stride = (nblocks & (nblocks - 1)) ? 1 : 2654435761u % nblocks | 1;
	gens = mem_alloc(nblocks * sizeof(*gens), 8);
	busy = mem_alloc(nblocks, 8);
	if (!gens || !busy) {
		printf("snap-blk: out of memory for %lu blocks\n", nblocks);
		return 3;
	}
	memset(gens, 0, nblocks * sizeof(*gens));
	memset(busy, 0, nblocks);
	for (unsigned int i = 0; i < depth; i++) {
		slots[i].buf = mem_alloc(BLOCK, 4096);
		if (!slots[i].buf) {
			printf("snap-blk: out of memory for buffers\n");
			return 3;
		}
	}
	r = user_call(run, &ms);
	if (r)
		return (int)r;
	r = vblk_flush(&disk);
	if (r != VIRTIO_BLK_S_OK) {
		printf("snap-blk: flush failed: %ld\n", r);
		return 2;
	}
	printf("snap-blk: flush ok\n");
	r = user_call(verify, NULL);
	if (r)
		return (int)r;
	printf("snap-blk: done\n");
	return 0;
}
