// SPDX-License-Identifier: MIT
/*
 * snap-blk over virtio-scsi: keeps many SCSI READ/WRITE requests in flight
 * on one LUN, with contents both sides can check, for as long as it runs;
 * meant to be snapshotted and restored (many times) in the middle.
 *
 * The LUN is cut into 4 KiB blocks. depth=N slots (default 64) each WRITE a
 * block, then READ it back and check it, then take the next block (a
 * permutation of all blocks, round after round; a block is never written by
 * two slots at once). Every flushevery=N-th read back (default 16, 0 for
 * never) is followed by a SYNCHRONIZE CACHE from that slot. READ/WRITE (10)
 * and (16) alternate (cdb=10|16 for one kind only). The blocks hold
 * blkpattern.h's data with the magic "snapscsi".
 *
 * Every completion is checked: it must belong to a request in flight (the
 * driver reports any other used id), carry a response the device wrote
 * (VSCSI_S_PENDING means the device returned it without finishing it, or
 * returned it twice) and be GOOD. So after any number of snapshots and
 * restores, each request completes exactly once or the guest fails.
 *
 * It runs for ms=N (default 2000) of guest time, or until a 'q' arrives on
 * COM1 (stdin of kvmini), then stops taking new blocks, drains,
 * SYNCHRONIZE CACHEs, and reads every block back to compare it with the
 * last write it made. Command line: ctrl=N, lun=N, depth=N, blocks=N,
 * ms=N, flushevery=N, cdb=10|16, and the driver options.
 *
 * Output: `snap-scsi: running: B blocks, depth D` once I/O is under way;
 * at the end `snap-scsi: W writes, R reads and F flushes completed once
 * each`, `snap-scsi: flush ok`, `snap-scsi: verified B blocks, gensum
 * 0x..` (the sum over blocks of (b + 1) * last g, which the host recomputes
 * from the image), and `snap-scsi: done`. Exit: 0 all good, 1 data
 * mismatch, 2 I/O error, timeout, a completion not in flight or twice, 3
 * setup failure.
 */
#include "blkpattern.h"
#include "guest.h"
#include "virtio_scsi.h"

#define BLOCK	       4096u
#define SECTORS	       (BLOCK / BLKPATTERN_SECTOR)
#define MAX_DEPTH      64
#define WAIT_MS	       60000 /* a completion may take a while under werror=stop */
#define UART_CHECK_MS  20
#define COM1_LSR       (COM1_PORT + 5)
#define LSR_DATA_READY 0x01
#define MAGIC	       "snapscsi"

enum state { IDLE, WRITING, READING, FLUSHING };

struct slot {
	enum state state;
	bool unsubmitted; /* prepared, the ring had no room yet */
	uint64_t block, gen;
	uint8_t *buf;
	struct vscsi_req req;
};

static struct vscsi ctl;
static uint16_t lun;
static unsigned int cdb_mode; /* 10, 16, 0: alternate */
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
		printf("snap-scsi: %s (block %lu)\n", what, b);
		failure = status;
	}
}

/* Queue @s's request if it is waiting for room in the ring. */
static void submit(struct slot *s)
{
	int e;

	if (!s->unsubmitted)
		return;
	e = vscsi_submit(&ctl, &s->req);
	if (e == -ENOSPC && inflight > 0)
		return; /* after the next completion */
	if (e) {
		printf("snap-scsi: submit failed: %d\n", e);
		failure = 2;
		return;
	}
	s->unsubmitted = false;
	inflight++;
}

static void start(struct slot *s, enum state st)
{
	static unsigned int toggle;

	if (st == FLUSHING) {
		s->req = (struct vscsi_req){.lun = lun};
		s->req.cdb[0] = SCSI_SYNC_CACHE10;
	} else {
		unsigned int cdb = cdb_mode ? cdb_mode : (toggle++ & 1) ? 16 : 10;
		vscsi_prep_rw(&s->req, lun, st == WRITING, cdb, s->block * SECTORS, SECTORS, s->buf,
			      BLOCK);
	}
	s->req.user = s;
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
		blkpattern_fill(s->buf, MAGIC, SECTORS, s->block, s->gen);
		start(s, WRITING);
	}
}

static void complete(struct vscsi_req *r)
{
	struct slot *s = r->user;
	int e = vscsi_result(r);

	inflight--;
	if (r->resp.response == VSCSI_S_PENDING || s->state == IDLE || s->unsubmitted) {
		fail(2, "a request completed that the device had not finished (twice?)", s->block);
		return;
	}
	if (e) {
		struct vscsi_sense sn;
		vscsi_sense(r, &sn);
		printf("snap-scsi: response %d status 0x%x sense %x/%02xh/%02xh\n",
		       VSCSI_RESPONSE(e), VSCSI_STATUS(e), sn.key, sn.asc, sn.ascq);
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
		if (!blkpattern_check(s->buf, MAGIC, SECTORS, s->block, s->gen))
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

	printf("snap-scsi: running: %lu blocks, depth %u\n", nblocks, depth);
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
		struct vscsi_req *r = vscsi_wait(&ctl, tsc_ms(WAIT_MS));
		if (!r) {
			printf("snap-scsi: waiting for a completion failed: %d (device status "
			       "0x%x)\n",
			       ctl.error, virtio_status(&ctl.vd));
			failure = 2;
			break;
		}
		do
			complete(r);
		while (!failure && (r = vscsi_reap(&ctl)));
		if (ctl.vq.error) {
			printf("snap-scsi: the device returned a request that was not in flight\n");
			failure = 2;
		}
	}
	if (failure)
		return failure;
	printf("snap-scsi: %lu writes, %lu reads and %lu flushes completed once each\n", writes,
	       reads, flushes);
	return 0;
}

/* After the run: SYNCHRONIZE CACHE, then every block as its last write left it. */
static long verify(void *arg)
{
	uint64_t gensum = 0;
	uint8_t *buf = slots[0].buf;
	int e = scsi_sync_cache(&ctl, lun);

	(void)arg;
	if (e) {
		printf("snap-scsi: flush failed: %d\n", e);
		return 2;
	}
	printf("snap-scsi: flush ok\n");
	for (uint64_t b = 0; b < nblocks; b++) {
		e = scsi_read16(&ctl, lun, b * SECTORS, SECTORS, buf, BLOCK);
		if (e) {
			printf("snap-scsi: verify: read of block %lu: %d\n", b, e);
			return 2;
		}
		if (!blkpattern_check(buf, MAGIC, SECTORS, b, gens[b])) {
			printf("snap-scsi: verify: block %lu does not hold write %lu\n", b,
			       gens[b]);
			return 1;
		}
		gensum += (b + 1) * gens[b];
	}
	printf("snap-scsi: verified %lu blocks, gensum 0x%lx\n", nblocks, gensum);
	return 0;
}

int main(void)
{
	uint64_t v = 0, ms = 2000, last;
	uint32_t bl;
	long r;

	cmdline_get_u64("ctrl", &v);
	if (vscsi_open(&ctl, v, "snap-scsi"))
		return 3;
	if (!cmdline_get_u64("lun", &v))
		lun = v;
	if (!cmdline_get_u64("cdb", &v) && (v == 10 || v == 16))
		cdb_mode = v;
	if (!cmdline_get_u64("depth", &v) && v >= 1 && v <= MAX_DEPTH)
		depth = v;
	cmdline_get_u64("ms", &ms);
	cmdline_get_u64("flushevery", &flush_every);
	if (scsi_test_unit_ready(&ctl, lun) ||
	    scsi_read_capacity16(&ctl, lun, &last, &bl, NULL, 0) || bl != BLKPATTERN_SECTOR) {
		printf("snap-scsi: lun %u: not ready or no 512-byte blocks\n", lun);
		return 3;
	}
	nblocks = (last + 1) / SECTORS;
	if (!cmdline_get_u64("blocks", &v) && v >= 1 && v < nblocks)
		nblocks = v;
	if (nblocks < depth) {
		printf("snap-scsi: %lu blocks is fewer than depth %u\n", nblocks, depth);
		return 3;
	}
	/* An odd stride walks every block of a power-of-two count; for other
	 * counts, 1 does. */
	stride = (nblocks & (nblocks - 1)) ? 1 : 2654435761u % nblocks | 1;
	gens = mem_alloc(nblocks * sizeof(*gens), 8);
	busy = mem_alloc(nblocks, 8);
	if (!gens || !busy) {
		printf("snap-scsi: out of memory for %lu blocks\n", nblocks);
		return 3;
	}
	memset(gens, 0, nblocks * sizeof(*gens));
	memset(busy, 0, nblocks);
	for (unsigned int i = 0; i < depth; i++) {
		slots[i].buf = mem_alloc(BLOCK, 4096);
		if (!slots[i].buf) {
			printf("snap-scsi: out of memory for buffers\n");
			return 3;
		}
	}
	r = user_call(run, &ms);
	if (r)
		return (int)r;
	r = user_call(verify, NULL);
	if (r)
		return (int)r;
	printf("snap-scsi: done\n");
	return 0;
}
