// SPDX-License-Identifier: MIT
/* The snapshot workload over disk_drv.h (disksnap.h). */
#include "disksnap.h"
#include "blkpattern.h"
#include "guest.h"

#define BLOCK	       4096u
#define SECTORS	       (BLOCK / DISK_SECTOR)
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
	struct disk_req req;
};

static struct disk *disk;
static const char *magic;
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
		printf("%s: %s (block %lu)\n", disk->name, what, b);
		failure = status;
	}
}

/* Queue @s's request if it is waiting for room in the ring. */
static void submit(struct slot *s)
{
	int e;

	if (!s->unsubmitted)
		return;
	e = disk_submit(disk, &s->req);
	if (e == -ENOSPC && inflight > 0)
		return; /* after the next completion */
	if (e) {
		printf("%s: submit failed: %d\n", disk->name, e);
		failure = 2;
		return;
	}
	s->unsubmitted = false;
	inflight++;
}

static void start(struct slot *s, enum state st)
{
	static const enum disk_op op[] = {
	    [WRITING] = DISK_WRITE, [READING] = DISK_READ, [FLUSHING] = DISK_FLUSH};

	s->req = (struct disk_req){.op = op[st], .user = s};
	if (st != FLUSHING) {
		s->req.sector = s->block * SECTORS;
		s->req.nsec = SECTORS;
		s->req.buf = s->buf;
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
		blkpattern_fill(s->buf, magic, SECTORS, s->block, s->gen);
		start(s, WRITING);
	}
}

static void complete(struct disk_req *r)
{
	struct slot *s = r->user;
	int e = disk_result(disk, r);

	inflight--;
	if (e == -EPROTO || s->state == IDLE || s->unsubmitted) {
		fail(2, "a request completed that the device had not finished (twice?)", s->block);
		return;
	}
	if (e) {
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
		if (!blkpattern_check(s->buf, magic, SECTORS, s->block, s->gen))
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

	printf("%s: running: %lu blocks, depth %u\n", disk->name, nblocks, depth);
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
		struct disk_req *r = disk_wait(disk, tsc_ms(WAIT_MS));
		if (!r) {
			failure = 2;
			break;
		}
		do
			complete(r);
		while (!failure && (r = disk_reap(disk)));
		if (disk->vq->error) {
			printf("%s: the device returned a request that was not in flight\n",
			       disk->name);
			failure = 2;
		}
	}
	if (failure)
		return failure;
	printf("%s: %lu writes, %lu reads and %lu flushes completed once each\n", disk->name,
	       writes, reads, flushes);
	return 0;
}

/* After the run: a flush, then every block as its last write left it. At CPL3. */
static long verify(void *arg)
{
	uint64_t gensum = 0;
	uint8_t *buf = slots[0].buf;
	int e = disk->ops->flush(disk);

	(void)arg;
	if (e) {
		printf("%s: flush failed: %d\n", disk->name, e);
		return 2;
	}
	printf("%s: flush ok\n", disk->name);
	for (uint64_t b = 0; b < nblocks; b++) {
		e = disk->ops->read(disk, b * SECTORS, buf, SECTORS);
		if (e) {
			printf("%s: verify: read of block %lu: %d\n", disk->name, b, e);
			return 2;
		}
		if (!blkpattern_check(buf, magic, SECTORS, b, gens[b])) {
			printf("%s: verify: block %lu does not hold write %lu\n", disk->name, b,
			       gens[b]);
			return 1;
		}
		gensum += (b + 1) * gens[b];
	}
	printf("%s: verified %lu blocks, gensum 0x%lx\n", disk->name, nblocks, gensum);
	return 0;
}

int disksnap_main(struct disk *d, const char m[8])
{
	uint64_t v = 0, ms = 2000;
	long r;

	disk = d;
	magic = m;
	if (!cmdline_get_u64("depth", &v) && v >= 1 && v <= MAX_DEPTH)
		depth = v;
	cmdline_get_u64("ms", &ms);
	cmdline_get_u64("flushevery", &flush_every);
	nblocks = disk->sectors / SECTORS;
	if (!cmdline_get_u64("blocks", &v) && v >= 1 && v < nblocks)
		nblocks = v;
	if (nblocks < depth) {
		printf("%s: %lu blocks is fewer than depth %u\n", disk->name, nblocks, depth);
		return 3;
	}
	/* An odd stride walks every block of a power-of-two count; for other
	 * counts, 1 does. */
	stride = (nblocks & (nblocks - 1)) ? 1 : 2654435761u % nblocks | 1;
	gens = mem_alloc(nblocks * sizeof(*gens), 8);
	busy = mem_alloc(nblocks, 8);
	if (!gens || !busy) {
		printf("%s: out of memory for %lu blocks\n", disk->name, nblocks);
		return 3;
	}
	memset(gens, 0, nblocks * sizeof(*gens));
	memset(busy, 0, nblocks);
	for (unsigned int i = 0; i < depth; i++) {
		slots[i].buf = mem_alloc(BLOCK, 4096);
		if (!slots[i].buf) {
			printf("%s: out of memory for buffers\n", disk->name);
			return 3;
		}
	}
	r = user_call(run, &ms);
	if (r)
		return (int)r;
	r = user_call(verify, NULL);
	if (r)
		return (int)r;
	printf("%s: done\n", disk->name);
	return 0;
}
