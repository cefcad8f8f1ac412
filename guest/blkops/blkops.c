// SPDX-License-Identifier: MIT
/*
 * One of each virtio-blk request, checked: GET_ID, IN, OUT (read back),
 * FLUSH, WRITE_ZEROES (read back zeroes), DISCARD, a read past the end, a
 * data length that is not a multiple of 512, an unknown request type.
 *
 * Command line: disk=N (default 0), ro (the disk is expected read-only:
 * every write must fail with IOERR and change nothing), scratch=SECTOR
 * (where writes go; default: the last 64 KiB of the disk), plus the driver
 * options of vblk_opts_from_cmdline (irq, qsize=, segs=, noindirect,
 * noevent_idx). Without `irq`, it also checks MSI-X masking: a completion
 * while the queue's vector (then the whole function) is masked sets the
 * pending bit and is delivered once on unmasking. Prints one line per check:
 *   blkops: CHECK status=S expect=E ok|FAIL [detail]
 * and `blkops: id "STRING"`. Exits 0 if every check passed, 1 if one failed,
 * 2 if the disk could not be set up.
 */
#include "guest.h"
#include "virtio_blk.h"

#define SCRATCH_BYTES 65536

static struct vblk disk;
static uint8_t *buf, *ref;
static int failures;
static bool ro;

static const char *status_name(int s)
{
	switch (s) {
	case VIRTIO_BLK_S_OK:
		return "OK";
	case VIRTIO_BLK_S_IOERR:
		return "IOERR";
	case VIRTIO_BLK_S_UNSUPP:
		return "UNSUPP";
	case -ETIMEDOUT:
		return "TIMEOUT";
	case -EIO:
		return "NEEDS_RESET";
	case -1:
		return "BAD";
	default:
		return "?";
	}
}

/* Record one check: @got against @want (or either of @want and @alt). */
static bool check(const char *what, int got, int want, int alt, const char *detail)
{
	bool ok = got == want || got == alt;

	if (!ok)
		failures++;
	printf("blkops: %s status=%s expect=%s%s%s %s%s%s\n", what, status_name(got),
	       status_name(want), alt != want ? "|" : "", alt != want ? status_name(alt) : "",
	       ok ? "ok" : "FAIL", detail ? " " : "", detail ? detail : "");
	return ok;
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i += 8) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		memcpy(p + i, &seed, 8);
	}
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static uint32_t last_written; /* used length of the last req() */

static int req(uint32_t type, uint64_t sector, void *data, uint32_t len, uint32_t flags)
{
	struct vblk_req r = {
	    .type = type, .sector = sector, .buf = data, .len = len, .flags = flags};
	int s = vblk_do(&disk, &r);

	last_written = r.written;
	return s;
}

/* The used length: what the device wrote into the writable buffers. */
static void check_used_len(const char *what, uint32_t want)
{
	char d[64];

	snprintf(d, sizeof(d), "used len %u, expect %u", last_written, want);
	check(what, last_written == want ? 0 : -1, 0, 0, d);
}

/*
 * Reset with requests in flight: the reset must complete (status reads 0),
 * and afterwards the device must not write into the old buffers any more;
 * then the device works again. Returns what went wrong or NULL.
 */
static const char *reset_inflight(uint8_t *mem, size_t bytes)
{
	static struct vblk_req r[32];
	struct vblk *b = &disk;
	unsigned int n = 0;

	for (; n < 32 && (n + 1) * 32768 <= bytes; n++) {
		r[n] = (struct vblk_req){.type = VIRTIO_BLK_T_IN,
					 .sector = n * 64,
					 .buf = mem + n * 32768,
					 .len = 32768};
		if (vblk_submit(b, &r[n]))
			return "submit failed";
	}
	vblk_kick(b);
	if (virtio_reset(&b->vd))
		return "reset did not complete";
	memset(mem, 0x5a, bytes);
	uint64_t t0 = rdtsc();
	while (rdtsc() - t0 < tsc_ms(50))
		cpu_relax();
	for (size_t i = 0; i < bytes; i++)
		if (mem[i] != 0x5a)
			return "the device wrote into a buffer after the reset";
	if (vblk_restart(b))
		return "restart failed";
	if (vblk_read(b, 0, mem, 4096) != VIRTIO_BLK_S_OK)
		return "read after the reset failed";
	return NULL;
}

#define MSIX_QUEUE_ENTRY 1
#define MSIX_CTRL	 2
#define MSIX_CTRL_FMASK	 0x4000
/*
 * How long an interrupt may take to show up. Success ends the waits at once;
 * only a failure waits this long. Generous because under nested KVM in an
 * emulated machine (scripts/kvmbox) a second of guest TSC time is not much.
 */
#define PENDING_WAIT_MS 10000

static long set_function_mask(void *masked)
{
	const struct pci_msix *m = &disk.vd.msix;
	uint16_t ctrl = pci_read16(m->d, m->cap + MSIX_CTRL);

	ctrl = masked ? ctrl | MSIX_CTRL_FMASK : ctrl & ~MSIX_CTRL_FMASK;
	pci_write16(m->d, m->cap + MSIX_CTRL, ctrl);
	return 0;
}

static bool count_changed(void *v)
{
	return irq_count(disk.queue_vector) != *(uint64_t *)v;
}

/*
 * MSI-X masking: with the queue's vector masked (@function: the whole
 * function masked instead), a completion must set the vector's pending bit
 * and deliver nothing; unmasking must deliver it once and clear the bit.
 * Returns a description of what went wrong, or NULL.
 */
static const char *msix_masking(bool function)
{
	struct vblk *b = &disk;
	struct vblk_req r = {.type = VIRTIO_BLK_T_IN, .sector = 0, .buf = buf, .len = 4096};
	const struct pci_msix *m = &b->vd.msix;
	const char *err = NULL;
	uint64_t t0, n0;

	b->opts.irq = true;
	if (vblk_restart(b))
		return "restart with interrupts failed";
	if (function)
		kernel_call(set_function_mask, (void *)1);
	else
		pci_msix_mask(m, MSIX_QUEUE_ENTRY, true);
	irq_poll();
	n0 = irq_count(b->queue_vector);
	virtq_enable_irq(&b->vq); /* interrupt wanted at the next completion */
	if (vblk_submit(b, &r)) {
		err = "submit failed";
		goto out;
	}
	vblk_kick(b);
	for (t0 = rdtsc(); !virtq_has_used(&b->vq) && rdtsc() - t0 < tsc_ms(VBLK_TIMEOUT_MS);)
		cpu_relax();
	if (vblk_reap(b) != &r || r.status != VIRTIO_BLK_S_OK) {
		err = "the read did not complete";
		goto out;
	}
	/* the interrupt may be raised a little after the used entry */
	for (t0 = rdtsc();
	     !pci_msix_pending(m, MSIX_QUEUE_ENTRY) && rdtsc() - t0 < tsc_ms(PENDING_WAIT_MS);)
		cpu_relax();
	if (!pci_msix_pending(m, MSIX_QUEUE_ENTRY)) {
		err = "no pending bit while masked";
		goto out;
	}
	irq_poll();
	if (irq_count(b->queue_vector) != n0) {
		err = "delivered while masked";
		goto out;
	}
	if (function)
		kernel_call(set_function_mask, NULL);
	else
		pci_msix_mask(m, MSIX_QUEUE_ENTRY, false);
	irq_wait(count_changed, &n0, tsc_ms(PENDING_WAIT_MS));
	if (irq_count(b->queue_vector) != n0 + 1) {
		static char why[64];

		snprintf(why, sizeof(why), "delivered %lu times after unmasking, not once",
			 (unsigned long)(irq_count(b->queue_vector) - n0));
		err = why;
	} else if (pci_msix_pending(m, MSIX_QUEUE_ENTRY))
		err = "pending bit still set after delivery";
out:
	if (function)
		kernel_call(set_function_mask, NULL);
	else
		pci_msix_mask(m, MSIX_QUEUE_ENTRY, false);
	b->opts.irq = false;
	if (vblk_restart(b) && !err)
		err = "restart failed";
	return err;
}

static long run(void *arg)
{
	struct vblk *b = &disk;
	uint64_t scratch =
	    b->capacity > SCRATCH_BYTES / 512 ? b->capacity - SCRATCH_BYTES / 512 : 0;
	uint32_t nsec = SCRATCH_BYTES / 512;
	char id[VIRTIO_BLK_ID_BYTES + 1];
	int s;

	cmdline_get_u64("scratch", &scratch);
	if (ro && !vblk_has(b, VIRTIO_BLK_F_RO)) {
		printf("blkops: ro expected but the device does not offer VIRTIO_BLK_F_RO FAIL\n");
		failures++;
	}

	s = vblk_get_id(b, id);
	check("get_id", s, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_OK, NULL);
	printf("blkops: id \"%s\"\n", id);

	/* GET_ID into 8 bytes: the device writes at most that much */
	uint8_t small[16];
	memset(small, 0xee, sizeof(small));
	s = req(VIRTIO_BLK_T_GET_ID, 0, small, 8, 0);
	bool canary = small[8] == 0xee && small[15] == 0xee;
	check("get_id_short", canary ? s : -1, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_OK,
	      canary ? "nothing written past 8 bytes" : "wrote past the buffer");

	s = req(VIRTIO_BLK_T_IN, scratch, ref, SCRATCH_BYTES, 0);
	check("read", s, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_OK, NULL);
	check_used_len("read_used_len", SCRATCH_BYTES + 1);

	fill(buf, SCRATCH_BYTES, scratch + 1);
	s = req(VIRTIO_BLK_T_OUT, scratch, buf, SCRATCH_BYTES, 0);
	if (ro) {
		check("write", s, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_IOERR, "(read-only disk)");
		memcpy(buf, ref, SCRATCH_BYTES); /* what the disk must still hold */
	} else {
		check("write", s, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_OK, NULL);
		check_used_len("write_used_len", 1);
	}
	uint8_t *back = mem_alloc(SCRATCH_BYTES, 4096);
	s = req(VIRTIO_BLK_T_IN, scratch, back, SCRATCH_BYTES, 0);
	bool same = back && !memcmp(back, buf, SCRATCH_BYTES);
	check("readback", same ? s : -1, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_OK,
	      same ? "data matches" : "data differs");

	s = vblk_flush(b);
	if (vblk_has(b, VIRTIO_BLK_F_FLUSH))
		check("flush", s, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_OK, NULL);
	else
		check("flush", s, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP, "(FLUSH not offered)");

	bool wz = vblk_has(b, VIRTIO_BLK_F_WRITE_ZEROES), dis = vblk_has(b, VIRTIO_BLK_F_DISCARD);
	if (ro) {
		/* A read-only disk must refuse these whether it offers them or not
		 * (UNSUPP when not offered). Discard is advisory: QEMU 7.2 answers
		 * OK on a read-only disk. None may change the data. */
		int alt = wz ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_UNSUPP;
		s = req(VIRTIO_BLK_T_WRITE_ZEROES, scratch, NULL, nsec / 2, 0);
		check("write_zeroes", s, VIRTIO_BLK_S_IOERR, alt, "(read-only disk)");
		s = req(VIRTIO_BLK_T_WRITE_ZEROES, scratch + nsec / 2, NULL, nsec / 2,
			VIRTIO_BLK_WZ_UNMAP);
		check("write_zeroes_unmap", s, VIRTIO_BLK_S_IOERR, alt, "(read-only disk)");
		s = req(VIRTIO_BLK_T_DISCARD, scratch, NULL, nsec, 0);
		if (s == VIRTIO_BLK_S_OK && dis)
			check("discard", s, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_OK,
			      "(read-only disk, ignored)");
		else
			check("discard", s, VIRTIO_BLK_S_IOERR,
			      dis ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_UNSUPP, "(read-only disk)");
		s = req(VIRTIO_BLK_T_IN, scratch, back, SCRATCH_BYTES, 0);
		bool same2 = !memcmp(back, ref, SCRATCH_BYTES);
		check("ro_readback", same2 ? s : -1, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_OK,
		      same2 ? "unchanged" : "data changed");
	}
	if (!ro && wz) {
		s = req(VIRTIO_BLK_T_WRITE_ZEROES, scratch, NULL, nsec / 2, 0);
		check("write_zeroes", s, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_OK, NULL);
		s = req(VIRTIO_BLK_T_WRITE_ZEROES, scratch + nsec / 2, NULL, nsec / 2,
			VIRTIO_BLK_WZ_UNMAP);
		check("write_zeroes_unmap", s, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_OK, NULL);
		s = req(VIRTIO_BLK_T_IN, scratch, back, SCRATCH_BYTES, 0);
		bool z = all_zero(back, SCRATCH_BYTES);
		check("zeroes_readback", z ? s : -1, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_OK,
		      z ? "zeroes" : "wrong data");
	} else if (!ro) {
		printf("blkops: write_zeroes skipped (not offered)\n");
	}
	if (!ro && wz) {
		/* unknown flags: UNSUPP (virtio 1.2 5.2.6.2); out of range: IOERR */
		s = req(VIRTIO_BLK_T_WRITE_ZEROES, scratch, NULL, 8, 0x2);
		check("write_zeroes_bad_flags", s, VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_S_UNSUPP, NULL);
		s = req(VIRTIO_BLK_T_WRITE_ZEROES, b->capacity - 4, NULL, 8, 0);
		check("write_zeroes_past_end", s, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_IOERR, NULL);
	}
	if (!ro && dis) {
		s = req(VIRTIO_BLK_T_DISCARD, scratch, NULL, 8, VIRTIO_BLK_WZ_UNMAP);
		check("discard_unmap_flag", s, VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_S_UNSUPP,
		      "(UNMAP is for write-zeroes only)");
		s = req(VIRTIO_BLK_T_DISCARD, b->capacity - 4, NULL, 8, 0);
		check("discard_past_end", s, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_IOERR, NULL);
		s = req(VIRTIO_BLK_T_DISCARD, scratch, NULL, nsec, 0);
		check("discard", s, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_OK, NULL);
	} else if (!ro) {
		printf("blkops: discard skipped (not offered)\n");
	}

	s = req(VIRTIO_BLK_T_IN, b->capacity, back, 512, 0);
	check("read_past_end", s, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_IOERR, NULL);
	s = req(VIRTIO_BLK_T_IN, b->capacity - 1, back, 1024, 0);
	check("read_across_end", s, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_IOERR, NULL);
	s = req(VIRTIO_BLK_T_IN, 0, back, 100, 0);
	check("read_len_100", s, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_IOERR, NULL);
	s = req(0x55, 0, NULL, 0, 0);
	check("unknown_type", s, VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_S_UNSUPP, NULL);

	const char *re = reset_inflight(back, SCRATCH_BYTES);
	check("reset_inflight", re ? -1 : 0, 0, 0, re ? re : "no write after reset, works again");

	if (b->vd.have_msix && b->queue_vector >= 0 && !b->opts.irq) {
		const char *e = msix_masking(false);
		check("msix_vector_mask", e ? -1 : 0, 0, 0,
		      e ? e : "pending while masked, delivered once");
		e = msix_masking(true);
		check("msix_function_mask", e ? -1 : 0, 0, 0,
		      e ? e : "pending while masked, delivered once");
	}

	if (b->opts.irq)
		printf("blkops: irq waits %lu, queue interrupts %lu, config interrupts %lu\n",
		       b->irq_waits, irq_count(b->queue_vector), irq_count(b->vd.config_vector));
	printf("blkops: %d failures\n", failures);
	return failures ? 1 : 0;
}

int main(void)
{
	uint64_t n = 0;

	cmdline_get_u64("disk", &n);
	ro = cmdline_has("ro");
	if (vblk_open(&disk, n, "blkops"))
		return 2;
	buf = mem_alloc(SCRATCH_BYTES, 4096);
	ref = mem_alloc(SCRATCH_BYTES, 4096);
	if (!buf || !ref) {
		printf("blkops: out of memory\n");
		return 2;
	}
	tsc_khz(); /* measured at CPL0 (an MSR write), cached for CPL3 */
	return user_call(run, NULL);
}
