// SPDX-License-Identifier: MIT
/*
 * Hands a virtio-blk device one malformed descriptor chain at a time and
 * checks that it notices: the device must set NEEDS_RESET (status bit
 * 0x40; a config-change interrupt is counted too), after which the driver
 * resets it, brings it up again and does a read that must return the
 * disk's first 4 KiB as read at the start.
 *
 * Cases (virtio 1.x 2.7.5 "driver MUST NOT" rules, from the device's side):
 *   loop             a descriptor chain that loops back on itself
 *   next_oob         a `next` beyond the descriptor table
 *   head_oob         an avail ring entry beyond the descriptor table
 *   avail_jump       avail->idx moved on by more than the queue size
 *   oob_addr         a buffer at 1 TiB, where there is no guest memory
 *   overflow         a buffer whose address + length wraps past 2^64
 *   toolong          a chain of max(queue size + 1, 1025) buffers (indirect
 *                    table): longer than the queue, and than any device takes
 *   indirect_over_qsize  an indirect table of queue size + 1 entries: the spec
 *                    forbids it (2.7.5.3.1), but Linux drivers do it and QEMU
 *                    and kvmini accept up to 1024 entries (allow= it there)
 *   indirect_len     an indirect table length that is not a multiple of 16
 *   indirect_zero    an indirect table of length 0
 *   indirect_oob     an indirect table at 1 TiB
 *   indirect_nested  an indirect descriptor inside an indirect table
 *   indirect_next    a descriptor with both INDIRECT and NEXT
 *   write_before_read a device-writable descriptor before a readable one
 *   short_header     a request header of 8 bytes instead of 16
 * Requests that could move data toward guest memory at a bad address are
 * writes (the device reads guest memory), aimed at the disk's last 64
 * sectors: a device that wrongly accepts them cannot corrupt the guest.
 *
 * Command line: cases=a,b,... (default all), allow=a,b,... (cases where a
 * device that completes the request, or ignores it, still passes as long as
 * it recovers: for QEMU, whose behaviour differs in places), need_irq (also
 * require the config-change interrupt), wait_ms=N (how long to wait for a
 * reaction, default 2000), disk=N, other=M (after each case, while disk N
 * is broken, read disk M: it must keep working), and the driver options.
 *
 * Output, one line per case:
 *   blkevil: case=NAME needs_reset=0|1 config_irq=N completed=0|1
 *            status=S recovered=0|1 result=pass|pass-allowed|FAIL
 * then `blkevil: N passed, M failed`. Exit 0 if all passed, 1 if any
 * failed, 3 if the disk could not be set up.
 */
#include "guest.h"
#include "virtio_blk.h"

#define REF_BYTES	   4096
#define DATA_BYTES	   (256 * 1024)
#define FAR_ADDR	   0x10000000000ull /* 1 TiB: beyond any guest RAM or MMIO we use */
#define TAIL_SECTORS	   64
#define CONFIG_IRQ_WAIT_MS 200
/* Longer than any device takes (QEMU and kvmini: 1024 buffers per chain) */
#define LONG_CHAIN 1025

static struct vblk disk, other;
static bool have_other;
static uint8_t *ref, *data, *back, *other_ref;
static struct virtq_desc *tab, *tab2; /* indirect tables of our own */
static struct virtio_blk_outhdr hdr_in, hdr_out;
static volatile uint8_t status_byte;
static uint64_t wait_ms = 2000;

struct outcome {
	bool needs_reset, completed, recovered, other_ok;
	uint64_t config_irqs;
	uint8_t status;
};

static void d(unsigned int i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	disk.vq.desc[i] = (struct virtq_desc){addr, len, flags, next};
}

static void t(struct virtq_desc *table, unsigned int i, uint64_t addr, uint32_t len, uint16_t flags,
	      uint16_t next)
{
	table[i] = (struct virtq_desc){addr, len, flags, next};
}

#define R	0
#define W	VIRTQ_DESC_F_WRITE
#define N	VIRTQ_DESC_F_NEXT
#define I	VIRTQ_DESC_F_INDIRECT
#define ADDR(p) ((uint64_t)(uintptr_t)(p))

/* A good read of 4 KiB at sector 0 as an indirect table at @table. */
static void good_table(struct virtq_desc *table)
{
	t(table, 0, ADDR(&hdr_in), sizeof(hdr_in), R | N, 1);
	t(table, 1, ADDR(data), 4096, W | N, 2);
	t(table, 2, ADDR(&status_byte), 1, W, 0);
}

static void c_loop(void)
{
	d(0, ADDR(&hdr_in), sizeof(hdr_in), R | N, 1);
	d(1, ADDR(data), 4096, W | N, 2);
	d(2, ADDR(&status_byte), 1, W | N, 1); /* back to 1 */
	virtq_publish_raw(&disk.vq, 0, &disk);
}

static void c_next_oob(void)
{
	d(0, ADDR(&hdr_in), sizeof(hdr_in), R | N, disk.vq.size + 5);
	virtq_publish_raw(&disk.vq, 0, &disk);
}

static void c_head_oob(void)
{
	d(0, ADDR(&hdr_in), sizeof(hdr_in), R | N, 1);
	d(1, ADDR(&status_byte), 1, W, 0);
	virtq_publish_raw(&disk.vq, disk.vq.size + 3, &disk);
}

static void c_avail_jump(void)
{
	d(0, ADDR(&hdr_in), sizeof(hdr_in), R | N, 1);
	d(1, ADDR(data), 4096, W | N, 2);
	d(2, ADDR(&status_byte), 1, W, 0);
	virtq_publish_raw(&disk.vq, 0, &disk);
	/* now claim size more entries than the ring can hold */
	disk.vq.avail_idx += disk.vq.size;
	disk.vq.avail[1] = disk.vq.avail_idx;
}

static void c_oob_addr(void)
{
	d(0, ADDR(&hdr_out), sizeof(hdr_out), R | N, 1);
	d(1, FAR_ADDR, 65536, R | N, 2);
	d(2, ADDR(&status_byte), 1, W, 0);
	virtq_publish_raw(&disk.vq, 0, &disk);
}

static void c_overflow(void)
{
	d(0, ADDR(&hdr_out), sizeof(hdr_out), R | N, 1);
	d(1, 0xfffffffffffff000ull, 0x2000, R | N, 2);
	d(2, ADDR(&status_byte), 1, W, 0);
	virtq_publish_raw(&disk.vq, 0, &disk);
}

/* An indirect read of @n entries: header, n - 2 sectors, status. */
static void long_table(unsigned int n)
{
	t(tab, 0, ADDR(&hdr_in), sizeof(hdr_in), R | N, 1);
	for (unsigned int i = 1; i + 1 < n; i++)
		t(tab, i, ADDR(data) + (i - 1) % (DATA_BYTES / 512) * 512, 512, W | N, i + 1);
	t(tab, n - 1, ADDR(&status_byte), 1, W, 0);
	d(0, ADDR(tab), n * sizeof(*tab), I, 0);
	virtq_publish_raw(&disk.vq, 0, &disk);
}

static unsigned int toolong_entries(void)
{
	return disk.vq.size + 1 > LONG_CHAIN ? disk.vq.size + 1 : LONG_CHAIN;
}

static void c_toolong(void)
{
	long_table(toolong_entries());
}

static void c_indirect_over_qsize(void)
{
	long_table(disk.vq.size + 1);
}

static void c_indirect_len(void)
{
	good_table(tab);
	d(0, ADDR(tab), 3 * sizeof(*tab) + 8, I, 0);
	virtq_publish_raw(&disk.vq, 0, &disk);
}

static void c_indirect_zero(void)
{
	good_table(tab);
	d(0, ADDR(tab), 0, I, 0);
	virtq_publish_raw(&disk.vq, 0, &disk);
}

static void c_indirect_oob(void)
{
	d(0, FAR_ADDR, 3 * sizeof(*tab), I, 0);
	virtq_publish_raw(&disk.vq, 0, &disk);
}

static void c_indirect_nested(void)
{
	/* Header and data, then an indirect descriptor (write flag set, which
	 * the device must ignore on indirect descriptors) to a table holding
	 * the status: treated as a plain buffer the chain would look valid. */
	t(tab, 0, ADDR(&hdr_in), sizeof(hdr_in), R | N, 1);
	t(tab, 1, ADDR(data), 4096, W | N, 2);
	t(tab, 2, ADDR(tab2), sizeof(*tab2), I | W, 0);
	t(tab2, 0, ADDR(&status_byte), 1, W, 0);
	d(0, ADDR(tab), 3 * sizeof(*tab), I, 0);
	virtq_publish_raw(&disk.vq, 0, &disk);
}

static void c_indirect_next(void)
{
	good_table(tab);
	d(0, ADDR(tab), 3 * sizeof(*tab), I | N, 1);
	d(1, ADDR(back), 512, W, 0);
	virtq_publish_raw(&disk.vq, 0, &disk);
}

static void c_write_before_read(void)
{
	d(0, ADDR(&status_byte), 1, W | N, 1);
	d(1, ADDR(&hdr_in), sizeof(hdr_in), R | N, 2);
	d(2, ADDR(data), 4096, W, 0);
	virtq_publish_raw(&disk.vq, 0, &disk);
}

static void c_short_header(void)
{
	d(0, ADDR(&hdr_in), 8, R | N, 1);
	d(1, ADDR(data), 4096, W | N, 2);
	d(2, ADDR(&status_byte), 1, W, 0);
	virtq_publish_raw(&disk.vq, 0, &disk);
}

struct evil_case {
	const char *name;
	void (*build)(void);
	bool indirect; /* needs INDIRECT_DESC */
};

static const struct evil_case cases[] = {
    {"loop", c_loop, false},
    {"next_oob", c_next_oob, false},
    {"head_oob", c_head_oob, false},
    {"avail_jump", c_avail_jump, false},
    {"oob_addr", c_oob_addr, false},
    {"overflow", c_overflow, false},
    {"toolong", c_toolong, true},
    {"indirect_over_qsize", c_indirect_over_qsize, true},
    {"indirect_len", c_indirect_len, true},
    {"indirect_zero", c_indirect_zero, true},
    {"indirect_oob", c_indirect_oob, true},
    {"indirect_nested", c_indirect_nested, true},
    {"indirect_next", c_indirect_next, true},
    {"write_before_read", c_write_before_read, false},
    {"short_header", c_short_header, false},
};

static bool reacted(void *arg)
{
	return (virtio_status(&disk.vd) & VIRTIO_STATUS_NEEDS_RESET) || virtq_has_used(&disk.vq);
}

static bool config_irq_seen(void *irq0)
{
	return irq_count(disk.vd.config_vector) != *(uint64_t *)irq0;
}

/* Reset, bring up, read the first 4 KiB: the device works again. */
static bool recover(void)
{
	int e = vblk_restart(&disk);

	if (e) {
		printf("blkevil:   restart failed: %d (status 0x%x)\n", e, virtio_status(&disk.vd));
		return false;
	}
	memset(back, 0, REF_BYTES);
	e = vblk_read(&disk, 0, back, REF_BYTES);
	if (e != VIRTIO_BLK_S_OK) {
		printf("blkevil:   read after reset: %d\n", e);
		return false;
	}
	return !memcmp(back, ref, REF_BYTES);
}

static struct outcome run_case(const struct evil_case *c)
{
	struct outcome o = {0};
	uint64_t irq0 = irq_count(disk.vd.config_vector);

	status_byte = VBLK_S_PENDING;
	c->build();
	/* Kick unconditionally: the device must look at the ring. */
	mb();
	mmio_write16(disk.vq.notify_addr, disk.vq.index);
	irq_wait(reacted, NULL, tsc_ms(wait_ms));
	o.needs_reset = virtio_status(&disk.vd) & VIRTIO_STATUS_NEEDS_RESET;
	/* The config-change interrupt may trail the status bit a little. */
	if (o.needs_reset && disk.vd.config_vector >= 0)
		irq_wait(config_irq_seen, &irq0, tsc_ms(CONFIG_IRQ_WAIT_MS));
	irq_poll();
	o.config_irqs = irq_count(disk.vd.config_vector) - irq0;
	o.completed = virtq_get(&disk.vq, NULL) != NULL;
	o.status = status_byte;
	if (have_other) {
		/* While this device is broken, the other one must work. */
		int e = vblk_read(&other, 0, back, REF_BYTES);
		o.other_ok = e == VIRTIO_BLK_S_OK && !memcmp(back, other_ref, REF_BYTES);
	}
	o.recovered = recover();
	return o;
}

static long run(void *arg)
{
	unsigned int passed = 0, failed = 0;
	bool need_irq = cmdline_has("need_irq");

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct evil_case *c = &cases[i];
		if (!cmdline_listed("cases", c->name, true))
			continue;
		if (c->indirect && !disk.vq.indirect) {
			printf("blkevil: case=%s result=FAIL (INDIRECT_DESC not negotiated)\n",
			       c->name);
			failed++;
			continue;
		}
		struct outcome o = run_case(c);
		bool allowed = cmdline_listed("allow", c->name, false);
		const char *result;
		if (have_other && !o.other_ok)
			result = "FAIL";
		else if (o.needs_reset && (!need_irq || o.config_irqs) && o.recovered)
			result = "pass";
		else if (allowed && o.recovered)
			result = "pass-allowed";
		else
			result = "FAIL";
		if (result[0] == 'F')
			failed++;
		else
			passed++;
		if (have_other)
			printf("blkevil:   other disk: read %s\n", o.other_ok ? "ok" : "FAILED");
		printf("blkevil: case=%s needs_reset=%d config_irq=%lu completed=%d status=%u "
		       "recovered=%d result=%s\n",
		       c->name, o.needs_reset, o.config_irqs, o.completed, o.status, o.recovered,
		       result);
	}
	printf("blkevil: %u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}

int main(void)
{
	uint64_t v = 0;

	cmdline_get_u64("disk", &v);
	if (vblk_open(&disk, v, "blkevil"))
		return 3;
	cmdline_get_u64("wait_ms", &wait_ms);
	if (disk.vd.config_vector < 0)
		printf("blkevil: no MSI-X: config-change interrupts are not counted\n");
	ref = mem_alloc(REF_BYTES, 4096);
	back = mem_alloc(REF_BYTES, 4096);
	data = mem_alloc(DATA_BYTES, 4096);
	tab = mem_alloc((toolong_entries() + 1) * sizeof(*tab), 4096);
	tab2 = mem_alloc(4096, 4096);
	if (!ref || !back || !data || !tab || !tab2) {
		printf("blkevil: out of memory\n");
		return 3;
	}
	if (disk.capacity < 2 * TAIL_SECTORS) {
		printf("blkevil: disk too small\n");
		return 3;
	}
	hdr_in = (struct virtio_blk_outhdr){.type = VIRTIO_BLK_T_IN, .sector = 0};
	hdr_out = (struct virtio_blk_outhdr){.type = VIRTIO_BLK_T_OUT,
					     .sector = disk.capacity - TAIL_SECTORS};
	if (!cmdline_get_u64("other", &v)) {
		other_ref = mem_alloc(REF_BYTES, 4096);
		if (!other_ref || vblk_open(&other, v, "blkevil-other") ||
		    vblk_read(&other, 0, other_ref, REF_BYTES) != VIRTIO_BLK_S_OK) {
			printf("blkevil: setting up the other disk %lu failed\n", v);
			return 3;
		}
		have_other = true;
	}
	if (vblk_read(&disk, 0, ref, REF_BYTES) != VIRTIO_BLK_S_OK) {
		printf("blkevil: reading the reference sectors failed\n");
		return 3;
	}
	return user_call(run, NULL);
}
