// SPDX-License-Identifier: MIT
/*
 * virtio-scsi end to end without a guest, on the virtio harness
 * (virtio_harness.h): the test plays the driver through config space, BAR
 * MMIO and rings in guest RAM; the device runs for real (iothread, thread
 * pool, the SCSI emulation, image files).
 *
 * Requests that must be in flight at a given moment are made so for sure,
 * not by timing: their data buffers are guest pages registered with
 * userfaultfd and missing, so the pool worker that copies from (WRITE) or
 * to (READ) such a page blocks in the kernel until the test resolves the
 * fault, and the fault message says the worker is there. Sixteen such
 * requests fill the controller's sixteen workers, so the next one waits in
 * the pool's queue. thread_pool_cancel is wrapped (-Wl,--wrap) to count
 * calls: a pause has begun (the device is marked paused) when it cancels.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/pci_regs.h>
#include <linux/userfaultfd.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_scsi.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "devices/block/scsi.h"
#include "tests/unit/virtio_harness.h"

#ifndef VIRTIO_SCSI_S_FUNCTION_COMPLETE
#define VIRTIO_SCSI_S_FUNCTION_COMPLETE 0 /* the spec's name; Linux's header lacks it */
#endif

#define QC 0 /* control queue */
#define QE 1 /* event queue */
#define QR 2 /* request queue */

#define MEM	     0x200000ULL /* the driver's guest RAM */
#define QSIZE	     128
#define SLOTS	     32
#define REQ_HDR	     offsetof(struct virtio_scsi_cmd_req, cdb)
#define RESP_HDR     offsetof(struct virtio_scsi_cmd_resp, sense)
#define S_REQ(s)     (MEM + 0x20000 + 0x800ULL * (s)) /* request header */
#define S_RESP(s)    (S_REQ(s) + 0x400)		      /* response header */
#define S_DATA(s)    (MEM + 0x100000 + 0x10000ULL * (s))
#define C_REQ(c)     (MEM + 0x38000 + 0x100ULL * (c)) /* control queue */
#define C_RESP(c)    (C_REQ(c) + 0x80)
#define DISK_SECTORS (8 * MIB / 512)
#define CFG(f)	     (VIRTIO_PCI_DEVICE_OFF + offsetof(struct virtio_scsi_config, f))

/* ---- thread_pool_cancel, counted ---- */

bool __real_thread_pool_cancel(struct thread_pool_req *req);
bool __wrap_thread_pool_cancel(struct thread_pool_req *req);
static unsigned cancels;

bool __wrap_thread_pool_cancel(struct thread_pool_req *req)
{
	__atomic_fetch_add(&cancels, 1, __ATOMIC_SEQ_CST);
	return __real_thread_pool_cancel(req);
}

/* ---- the controller ---- */

/* The driver's view: cdb_size / sense_size it set. */
static uint32_t drv_cdb = 32, drv_sense = 96;

/* Realize virtio-scsi with --scsi-disk "path=IMAGE" + @specs[i]: LUN i on
 * image i (and the third on, and more, image 0). */
static int add_scsi(struct env *e, unsigned n, const char *const *specs, char (*buf)[160],
		    struct errbuf *err)
{
	for (unsigned i = 0; i < n; i++) {
		snprintf(buf[i], 160, "path=%s%s", e->path[i < 2 ? i : 0], specs[i]);
		e->cfg.scsi_disks[i] = buf[i];
	}
	e->cfg.nscsi_disks = n;
	return env_add_device(e, 0, &virtio_scsi_ops, "", err);
}

/* A driver reset and init: the sizes are the defaults again. */
static void scsi_reinit(struct drv *d)
{
	drv_init(d, QSIZE, ALL_FEATURES);
	drv_cdb = 32;
	drv_sense = 96;
}

static void scsi_up(struct drv *d, struct env *e)
{
	drv_probe(d, e, 1, MEM, VIRTIO_ID_SCSI);
	scsi_reinit(d);
}

static void lun_bytes(uint8_t l[8], unsigned lun)
{
	memset(l, 0, 8);
	l[0] = 1;
	l[2] = (uint8_t)(0x40 | lun >> 8);
	l[3] = (uint8_t)lun;
}

struct cmd {
	uint8_t lun[8];
	uint64_t tag;
	uint8_t cdb[32];
	uint32_t dout, din; /* data buffers (0: none) */
	uint32_t req_len;   /* 0: header and drv_cdb */
	uint32_t resp_len;  /* 0: header and drv_sense */
};

static struct cmd cmd_lun(unsigned lun)
{
	struct cmd c = {0};

	lun_bytes(c.lun, lun);
	return c;
}

static void cdb_rw(uint8_t *cdb, bool sixteen, bool write, uint64_t lba, uint32_t n)
{
	memset(cdb, 0, 16);
	if (sixteen) {
		cdb[0] = write ? 0x8a : 0x88;
		for (int i = 0; i < 8; i++)
			cdb[2 + i] = (uint8_t)(lba >> (56 - 8 * i));
		for (int i = 0; i < 4; i++)
			cdb[10 + i] = (uint8_t)(n >> (24 - 8 * i));
	} else {
		cdb[0] = write ? 0x2a : 0x28;
		for (int i = 0; i < 4; i++)
			cdb[2 + i] = (uint8_t)(lba >> (24 - 8 * i));
		cdb[7] = (uint8_t)(n >> 8);
		cdb[8] = (uint8_t)n;
	}
}

/* Queue command @c in slot @s (head 4 * s); returns the head. */
static uint16_t queue_cmd(struct drv *d, unsigned s, const struct cmd *c)
{
	uint16_t head = (uint16_t)(4 * s % QSIZE), i = head;
	uint32_t req_len = c->req_len ? c->req_len : (uint32_t)REQ_HDR + drv_cdb;
	uint32_t resp_len = c->resp_len ? c->resp_len : (uint32_t)RESP_HDR + drv_sense;
	uint8_t *req = gp(d, S_REQ(s));
	uint64_t t = drv_ring(d, QR, R_DESC);

	memset(req, 0, 0x400);
	memcpy(req, c->lun, 8);
	memcpy(req + 8, &c->tag, 8);
	memcpy(req + REQ_HDR, c->cdb, drv_cdb < 32 ? drv_cdb : 32);
	memset(gp(d, S_RESP(s)), 0xee, 0x400);
	put_desc(d, t, i, S_REQ(s), req_len, VRING_DESC_F_NEXT, (uint16_t)(i + 1));
	i++;
	if (c->dout) {
		put_desc(d, t, i, S_DATA(s), c->dout, VRING_DESC_F_NEXT, (uint16_t)(i + 1));
		i++;
	}
	put_desc(d, t, i, S_RESP(s), resp_len,
		 VRING_DESC_F_WRITE | (c->din ? VRING_DESC_F_NEXT : 0), (uint16_t)(i + 1));
	i++;
	if (c->din)
		put_desc(d, t, i, S_DATA(s) + (c->dout ? 0x8000 : 0), c->din, VRING_DESC_F_WRITE,
			 0);
	publish(d, QR, head);
	return head;
}

static struct virtio_scsi_cmd_resp *resp(struct drv *d, unsigned s)
{
	return gp(d, S_RESP(s));
}

static uint8_t *data(struct drv *d, unsigned s)
{
	return gp(d, S_DATA(s));
}

/* One command in slot 0, synchronously; its response. */
static struct virtio_scsi_cmd_resp *do_cmd(struct drv *d, const struct cmd *c)
{
	uint16_t target = (uint16_t)(d->vq[QR].used_seen + 1);

	queue_cmd(d, 0, c);
	kick(d, QR, false);
	assert_true(wait_used(d, QR, target));
	d->vq[QR].used_seen = target;
	return resp(d, 0);
}

/* A command with no data buffer but a data-in of @din; its response. */
static struct virtio_scsi_cmd_resp *do_simple(struct drv *d, unsigned lun, uint8_t op, uint32_t din)
{
	struct cmd c = cmd_lun(lun);

	c.cdb[0] = op;
	if (op == 0x12 || op == 0x03)
		c.cdb[4] = (uint8_t)din;
	c.din = din;
	return do_cmd(d, &c);
}

static void assert_sense(const struct virtio_scsi_cmd_resp *r, uint8_t key, uint8_t asc,
			 uint8_t ascq)
{
	assert_int_equal(r->response, VIRTIO_SCSI_S_OK);
	assert_int_equal(r->status, SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(r->sense_len, SCSI_SENSE_LEN);
	assert_int_equal(r->sense[0], 0x70);
	if (r->sense[2] != key || r->sense[12] != asc || r->sense[13] != ascq)
		fail_msg("sense %x/%02x/%02x, expected %x/%02x/%02x", r->sense[2], r->sense[12],
			 r->sense[13], key, asc, ascq);
}

/* Control queue: the request @req (@len bytes) in slot @c, response @rlen. */
static uint16_t queue_ctrl(struct drv *d, unsigned c, const void *req, uint32_t len, uint32_t rlen)
{
	uint16_t head = (uint16_t)(2 * c % QSIZE);
	uint64_t t = drv_ring(d, QC, R_DESC);

	memcpy(gp(d, C_REQ(c)), req, len);
	memset(gp(d, C_RESP(c)), 0xee, 0x80);
	put_desc(d, t, head, C_REQ(c), len, VRING_DESC_F_NEXT, (uint16_t)(head + 1));
	put_desc(d, t, head + 1, C_RESP(c), rlen, VRING_DESC_F_WRITE, 0);
	publish(d, QC, head);
	return head;
}

static uint16_t queue_tmf(struct drv *d, unsigned c, uint32_t subtype, unsigned lun, uint64_t tag)
{
	struct virtio_scsi_ctrl_tmf_req q = {
	    .type = VIRTIO_SCSI_T_TMF, .subtype = subtype, .tag = tag};

	lun_bytes(q.lun, lun);
	return queue_ctrl(d, c, &q, sizeof(q), sizeof(struct virtio_scsi_ctrl_tmf_resp));
}

static uint8_t ctrl_response(struct drv *d, unsigned c)
{
	return *(uint8_t *)gp(d, C_RESP(c));
}

/* A TMF in control slot 0, synchronously: its response. */
static uint8_t do_tmf(struct drv *d, uint32_t subtype, unsigned lun, uint64_t tag)
{
	uint16_t target = (uint16_t)(d->vq[QC].used_seen + 1);

	queue_tmf(d, 0, subtype, lun, tag);
	kick(d, QC, false);
	assert_true(wait_used(d, QC, target));
	d->vq[QC].used_seen = target;
	return ctrl_response(d, 0);
}

/* A TMF in control slot 0 must answer @want. */
static void tmf_is(struct drv *d, uint32_t subtype, unsigned lun, uint64_t tag, uint8_t want)
{
	uint8_t got = do_tmf(d, subtype, lun, tag);

	if (got != want)
		fail_msg("TMF %u on LUN %u, tag %llu: response %u, expected %u", subtype, lun,
			 (unsigned long long)tag, got, want);
}

/* The image's byte at @off. */
static uint8_t file_byte(struct env *e, int i, uint64_t off)
{
	uint8_t b = 0;
	int fd = open(e->path[i], O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
	close(fd);
	return b;
}

static void file_fill(struct env *e, int i, uint64_t sector, uint8_t v)
{
	uint8_t buf[512];
	int fd = open(e->path[i], O_WRONLY);

	memset(buf, v, sizeof(buf));
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, 512, (off_t)(sector * 512)), 512);
	close(fd);
}

/* ---- userfaultfd: data buffers whose host work blocks ---- */

struct stall {
	int fd;
	struct drv *d;
	unsigned nfaults;
};

/* Register slot @s's first data page, made missing. False: no userfaultfd. */
static bool stall_open(struct stall *u, struct drv *d)
{
	struct uffdio_api api = {.api = UFFD_API};

	u->d = d;
	u->nfaults = 0;
	u->fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (u->fd < 0 || ioctl(u->fd, UFFDIO_API, &api) < 0) {
		print_message("skipped: userfaultfd is not available here (%s)\n", strerror(errno));
		if (u->fd >= 0)
			close(u->fd);
		return false;
	}
	return true;
}

static void stall_slot(struct stall *u, unsigned s)
{
	uint8_t *p = gp(u->d, S_DATA(s));
	struct uffdio_register r = {.range = {(uintptr_t)p, 4096},
				    .mode = UFFDIO_REGISTER_MODE_MISSING};

	assert_int_equal(madvise(p, 4096, MADV_DONTNEED), 0);
	assert_int_equal(ioctl(u->fd, UFFDIO_REGISTER, &r), 0);
}

/* Wait (10 s at most) until @n workers in all are stuck on a stalled page. */
static void stall_wait(struct stall *u, unsigned n)
{
	for (int i = 0; i < 1000 && u->nfaults < n; i++) {
		struct pollfd pf = {u->fd, POLLIN, 0};
		struct uffd_msg m;

		if (poll(&pf, 1, 10) == 1 && read(u->fd, &m, sizeof(m)) == sizeof(m)) {
			assert_int_equal(m.event, UFFD_EVENT_PAGEFAULT);
			u->nfaults++;
		}
	}
	assert_int_equal(u->nfaults, n);
}

/* Let slot @s's worker go on: the page appears with bytes @v. */
static void stall_release(struct stall *u, unsigned s, uint8_t v)
{
	static uint8_t page[4096] __attribute__((aligned(4096)));
	struct uffdio_copy c = {
	    .dst = (uintptr_t)gp(u->d, S_DATA(s)), .src = (uintptr_t)page, .len = 4096};

	memset(page, v, sizeof(page));
	assert_int_equal(ioctl(u->fd, UFFDIO_COPY, &c), 0);
}

static void stall_close(struct stall *u)
{
	close(u->fd);
}

/* QUERY TASK until the request with @tag is in flight (10 s at most). */
static void wait_in_flight(struct drv *d, uint64_t tag)
{
	for (int i = 0; i < 10000; i++) {
		if (do_tmf(d, VIRTIO_SCSI_T_TMF_QUERY_TASK, 0, tag) ==
		    VIRTIO_SCSI_S_FUNCTION_SUCCEEDED)
			return;
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
	fail_msg("tag %llu never went in flight", (unsigned long long)tag);
}

/* ---- config space ---- */

static void test_config(void **st)
{
	static const char *const specs[] = {""};
	struct env *e = env_new();
	char buf[1][160];
	struct errbuf err;
	struct drv d;
	uint64_t dev;

	(void)st;
	make_image(e, 0, 8 * MIB);
	assert_int_equal(add_scsi(e, 1, specs, buf, &err), 0);
	drv_probe(&d, e, 1, MEM, VIRTIO_ID_SCSI);
	assert_int_equal(cfg_read(&d, PCI_CLASS_DEVICE, 2), 0x0100); /* mass storage, SCSI */
	assert_int_equal(cfg_read(&d, d.caps[VIRTIO_PCI_CAP_DEVICE_CFG] + 12, 4),
			 sizeof(struct virtio_scsi_config));
	assert_int_equal(d.nvec, 4);
	dev = d.bar0;
	assert_int_equal(mmio_read(&d, dev + CFG(num_queues), 4), 1);
	assert_int_equal(mmio_read(&d, dev + CFG(seg_max), 4), 254);
	assert_int_equal(mmio_read(&d, dev + CFG(max_sectors), 4), SCSI_MAX_XFER);
	assert_int_equal(mmio_read(&d, dev + CFG(cmd_per_lun), 4), 256);
	assert_int_equal(mmio_read(&d, dev + CFG(event_info_size), 4),
			 sizeof(struct virtio_scsi_event));
	assert_int_equal(mmio_read(&d, dev + CFG(sense_size), 4), 96);
	assert_int_equal(mmio_read(&d, dev + CFG(cdb_size), 4), 32);
	assert_int_equal(mmio_read(&d, dev + CFG(max_channel), 2), 0);
	assert_int_equal(mmio_read(&d, dev + CFG(max_target), 2), 0);
	assert_int_equal(mmio_read(&d, dev + CFG(max_lun), 4), 255);
	drv_init(&d, QSIZE, ALL_FEATURES);
	assert_int_equal(d.nq, 3);
	/* No INOUT, HOTPLUG, CHANGE or T10_PI. */
	assert_int_equal(d.features & 0xf, 0);
	assert_int_not_equal(d.features & (1ULL << VIRTIO_F_VERSION_1), 0);

	/* The driver sets cdb_size and sense_size; nothing else sticks. */
	mmio_write(&d, dev + CFG(cdb_size), 16, 4);
	mmio_write(&d, dev + CFG(sense_size), 256, 4);
	assert_int_equal(mmio_read(&d, dev + CFG(cdb_size), 4), 16);
	assert_int_equal(mmio_read(&d, dev + CFG(sense_size), 4), 256);
	mmio_write(&d, dev + CFG(num_queues), 7, 4);
	mmio_write(&d, dev + CFG(seg_max), 1, 4);
	mmio_write(&d, dev + CFG(max_lun), 0, 4);
	mmio_write(&d, dev + CFG(max_target), 9, 2);
	assert_int_equal(mmio_read(&d, dev + CFG(num_queues), 4), 1);
	assert_int_equal(mmio_read(&d, dev + CFG(seg_max), 4), 254);
	assert_int_equal(mmio_read(&d, dev + CFG(max_lun), 4), 255);
	assert_int_equal(mmio_read(&d, dev + CFG(max_target), 2), 0);
	/* Beyond 256: ignored, the last value stays. */
	mmio_write(&d, dev + CFG(cdb_size), 257, 4);
	mmio_write(&d, dev + CFG(sense_size), 0x10000, 4);
	assert_int_equal(mmio_read(&d, dev + CFG(cdb_size), 4), 16);
	assert_int_equal(mmio_read(&d, dev + CFG(sense_size), 4), 256);
	/* One byte at a time works too. */
	mmio_write(&d, dev + CFG(cdb_size), 24, 1);
	assert_int_equal(mmio_read(&d, dev + CFG(cdb_size), 4), 24);
	/* A reset restores the defaults. */
	set_status(&d, 0);
	assert_int_equal(mmio_read(&d, dev + CFG(cdb_size), 4), 32);
	assert_int_equal(mmio_read(&d, dev + CFG(sense_size), 4), 96);
	env_free(e);
}

/* ---- commands ---- */

static void test_commands(void **st)
{
	static const char *const specs[] = {",serial=s0%s", ",lun=3,readonly=on"};
	const char *aio = aio_opt(st);
	struct env *e = env_new();
	char buf[2][160], spec0[64];
	const char *sp[2] = {spec0, specs[1]};
	struct virtio_scsi_cmd_resp *r;
	struct errbuf err;
	struct cmd c;
	struct drv d;
	uint32_t len;

	make_image(e, 0, 8 * MIB);
	make_image(e, 1, 1 * MIB);
	snprintf(spec0, sizeof(spec0), ",serial=s0%s", aio);
	assert_int_equal(add_scsi(e, 2, sp, buf, &err), 0);
	scsi_up(&d, e);

	/* INQUIRY: standard data, 36 bytes of a 96-byte buffer. */
	r = do_simple(&d, 0, 0x12, 96);
	assert_int_equal(r->response, VIRTIO_SCSI_S_OK);
	assert_int_equal(r->status, SCSI_STATUS_GOOD);
	assert_int_equal(r->sense_len, 0);
	assert_int_equal(r->resid, 96 - 36);
	assert_int_equal(data(&d, 0)[0 + 0x0], 0); /* direct-access block device */
	assert_int_equal(data(&d, 0)[4], 31);
	used_head(&d, QR, 0, &len);
	assert_int_equal(len, RESP_HDR + 96 + 36);
	assert_true(wait_deliver(&e->k, d.q_data[QR]) >= 1);
	/* A LUN the target does not have: the emulation answers. */
	r = do_simple(&d, 5, 0x12, 96);
	assert_int_equal(r->status, SCSI_STATUS_GOOD);
	assert_int_equal(data(&d, 0)[0], 0x7f);
	r = do_simple(&d, 5, 0x00, 0); /* TEST UNIT READY */
	assert_sense(r, SCSI_SENSE_ILLEGAL_REQUEST, 0x25, 0);
	/* Another target, or not a single-level LUN: BAD_TARGET. */
	c = cmd_lun(0);
	c.lun[1] = 1;
	c.cdb[0] = 0x12;
	c.cdb[4] = 96;
	c.din = 96;
	assert_int_equal(do_cmd(&d, &c)->response, VIRTIO_SCSI_S_BAD_TARGET);
	c.lun[1] = 0;
	c.lun[0] = 0;
	assert_int_equal(do_cmd(&d, &c)->response, VIRTIO_SCSI_S_BAD_TARGET);
	c.lun[0] = 2;
	assert_int_equal(do_cmd(&d, &c)->response, VIRTIO_SCSI_S_BAD_TARGET);

	/* READ (10) and (16): sector s of image 0 holds s & 0xff. */
	c = cmd_lun(0);
	cdb_rw(c.cdb, false, false, 5, 8);
	c.din = 8 * 512 + 100;
	r = do_cmd(&d, &c);
	assert_int_equal(r->response, VIRTIO_SCSI_S_OK);
	assert_int_equal(r->status, SCSI_STATUS_GOOD);
	assert_int_equal(r->resid, 100);
	for (int i = 0; i < 8 * 512; i++)
		assert_int_equal(data(&d, 0)[i], 5 + i / 512);
	used_head(&d, QR, (uint16_t)(d.vq[QR].used_seen - 1), &len);
	assert_int_equal(len, RESP_HDR + 96 + 8 * 512);
	cdb_rw(c.cdb, true, false, 0x1234, 2);
	c.din = 1024;
	r = do_cmd(&d, &c);
	assert_int_equal(r->status, SCSI_STATUS_GOOD);
	assert_int_equal(r->resid, 0);
	assert_int_equal(data(&d, 0)[0], 0x34);
	assert_int_equal(data(&d, 0)[1023], 0x35);
	/* WRITE (10) and (16), checked in the file. */
	c = cmd_lun(0);
	cdb_rw(c.cdb, false, true, 10, 2);
	c.dout = 1024 + 512;
	memset(data(&d, 0), 0x5a, 1024 + 512);
	r = do_cmd(&d, &c);
	assert_int_equal(r->status, SCSI_STATUS_GOOD);
	assert_int_equal(r->resid, 512);
	assert_int_equal(file_byte(e, 0, 10 * 512), 0x5a);
	assert_int_equal(file_byte(e, 0, 12 * 512 - 1), 0x5a);
	assert_int_equal(file_byte(e, 0, 12 * 512), 12);
	cdb_rw(c.cdb, true, true, DISK_SECTORS - 1, 1);
	c.dout = 512;
	memset(data(&d, 0), 0xa5, 512);
	r = do_cmd(&d, &c);
	assert_int_equal(r->status, SCSI_STATUS_GOOD);
	assert_int_equal(file_byte(e, 0, 8 * MIB - 1), 0xa5);
	/* Past the end: CHECK CONDITION, LBA OUT OF RANGE, all residual. */
	cdb_rw(c.cdb, true, true, DISK_SECTORS - 1, 2);
	c.dout = 1024;
	r = do_cmd(&d, &c);
	assert_sense(r, SCSI_SENSE_ILLEGAL_REQUEST, 0x21, 0);
	assert_int_equal(r->resid, 1024);
	/* The read-only LUN 3 (image 1). */
	c = cmd_lun(3);
	cdb_rw(c.cdb, false, true, 0, 1);
	c.dout = 512;
	assert_sense(do_cmd(&d, &c), SCSI_SENSE_DATA_PROTECT, 0x27, 0);
	assert_int_equal(file_byte(e, 1, 0), 0);
	cdb_rw(c.cdb, false, false, 7, 1);
	c.dout = 0;
	c.din = 512;
	assert_int_equal(do_cmd(&d, &c)->status, SCSI_STATUS_GOOD);
	assert_int_equal(data(&d, 0)[0], 7);

	/* A buffer smaller than the transfer, or the wrong way: OVERRUN. */
	c = cmd_lun(0);
	cdb_rw(c.cdb, false, false, 0, 8);
	c.din = 8 * 512 - 1;
	assert_int_equal(do_cmd(&d, &c)->response, VIRTIO_SCSI_S_OVERRUN);
	c.din = 0;
	c.dout = 8 * 512;
	assert_int_equal(do_cmd(&d, &c)->response, VIRTIO_SCSI_S_OVERRUN);
	cdb_rw(c.cdb, false, true, 0, 1);
	c.dout = 0;
	c.din = 512;
	assert_int_equal(do_cmd(&d, &c)->response, VIRTIO_SCSI_S_OVERRUN);
	assert_int_equal(file_byte(e, 0, 0), 0);
	/* Both ways at once (no VIRTIO_SCSI_F_INOUT): FAILURE. */
	c.dout = 512;
	c.din = 512;
	assert_int_equal(do_cmd(&d, &c)->response, VIRTIO_SCSI_S_FAILURE);
	/* Zero blocks: nothing to do, GOOD. */
	cdb_rw(c.cdb, false, true, 0, 0);
	c.din = 0;
	r = do_cmd(&d, &c);
	assert_int_equal(r->status, SCSI_STATUS_GOOD);
	assert_int_equal(r->resid, 512);

	/* The driver's cdb_size / sense_size are honoured. */
	mmio_write(&d, d.bar0 + CFG(cdb_size), 16, 4);
	mmio_write(&d, d.bar0 + CFG(sense_size), 8, 4);
	drv_cdb = 16;
	drv_sense = 8;
	c = cmd_lun(0);
	cdb_rw(c.cdb, true, false, 0x42, 1);
	c.din = 512;
	r = do_cmd(&d, &c);
	assert_int_equal(r->status, SCSI_STATUS_GOOD);
	assert_int_equal(data(&d, 0)[0], 0x42);
	used_head(&d, QR, (uint16_t)(d.vq[QR].used_seen - 1), &len);
	assert_int_equal(len, RESP_HDR + 8 + 512);
	/* Sense cut to 8 bytes, the byte after it untouched. */
	r = do_simple(&d, 5, 0x00, 0);
	assert_int_equal(r->status, SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(r->sense_len, 8);
	assert_int_equal(r->sense[2], SCSI_SENSE_ILLEGAL_REQUEST);
	assert_int_equal(r->sense[8], 0xee);
	mmio_write(&d, d.bar0 + CFG(sense_size), 128, 4);
	drv_sense = 128;
	r = do_simple(&d, 5, 0x00, 0);
	assert_int_equal(r->sense_len, SCSI_SENSE_LEN);
	assert_int_equal(r->sense[12], 0x25);
	assert_int_equal(r->sense[SCSI_SENSE_LEN], 0); /* zeroes to sense_size */
	assert_int_equal(r->sense[127], 0);
	assert_int_equal(((uint8_t *)r)[RESP_HDR + 128], 0xee);
	env_free(e);
}

/* A chain that is not a command puts the device in NEEDS_RESET. */
static void test_needs_reset(void **st)
{
	static const char *const specs[] = {""};
	struct env *e = env_new();
	char buf[1][160];
	struct virtio_scsi_cmd_resp *r;
	struct errbuf err;
	struct cmd c;
	struct drv d;

	(void)st;
	make_image(e, 0, 8 * MIB);
	assert_int_equal(add_scsi(e, 1, specs, buf, &err), 0);
	scsi_up(&d, e);
	for (int k = 0; k < 3; k++) {
		c = cmd_lun(0);
		c.cdb[0] = 0x12;
		c.cdb[4] = 36;
		c.din = 36;
		if (k == 0)
			c.req_len = REQ_HDR + 31; /* header shorter than cdb_size */
		else
			c.din = 0; /* the response may span buffers: none after it */
		if (k == 1)
			c.resp_len = RESP_HDR + 95; /* no room for sense_size */
		else if (k == 2)
			c.resp_len = 4; /* hardly any response */
		queue_cmd(&d, 0, &c);
		kick(&d, QR, false);
		assert_true(wait_config_irq(&d));
		assert_int_not_equal(status(&d) & VIRTIO_STATUS_NEEDS_RESET, 0);
		assert_int_equal(used_idx(&d, QR), d.vq[QR].used_seen);
		/* A driver reset repairs it. */
		scsi_reinit(&d);
		r = do_simple(&d, 0, 0x12, 36);
		assert_int_equal(r->status, SCSI_STATUS_GOOD);
		assert_int_equal(data(&d, 0)[4], 31);
		/* A driver reset leaves the LUNs alone: no unit attention
		 * (what the device does today; see the report). */
		assert_int_equal(do_simple(&d, 0, 0x00, 0)->status, SCSI_STATUS_GOOD);
	}
	/* With cdb_size 6, a 25-byte header is enough. */
	mmio_write(&d, d.bar0 + CFG(cdb_size), 6, 4);
	drv_cdb = 6;
	r = do_simple(&d, 0, 0x12, 36);
	assert_int_equal(r->status, SCSI_STATUS_GOOD);
	assert_int_equal(status(&d), 0xf);
	env_free(e);
}

/* ---- control queue ---- */

static void test_control(void **st)
{
	static const char *const specs[] = {"", ",lun=2"};
	struct env *e = env_new();
	char buf[2][160];
	struct virtio_scsi_ctrl_an_req an = {.type = VIRTIO_SCSI_T_AN_QUERY,
					     .event_requested = ~0u};
	struct virtio_scsi_ctrl_an_resp *ar;
	struct errbuf err;
	struct drv d;
	uint32_t len, type;

	(void)st;
	make_image(e, 0, 8 * MIB);
	make_image(e, 1, 1 * MIB);
	assert_int_equal(add_scsi(e, 2, specs, buf, &err), 0);
	scsi_up(&d, e);
	/* Asynchronous notification: none offered, none granted. */
	lun_bytes(an.lun, 0);
	for (int k = 0; k < 2; k++) {
		an.type = k ? VIRTIO_SCSI_T_AN_SUBSCRIBE : VIRTIO_SCSI_T_AN_QUERY;
		queue_ctrl(&d, 1, &an, sizeof(an), sizeof(*ar));
		kick(&d, QC, false);
		assert_true(wait_used(&d, QC, (uint16_t)++d.vq[QC].used_seen));
		ar = gp(&d, C_RESP(1));
		assert_int_equal(ar->event_actual, 0);
		assert_int_equal(ar->response, VIRTIO_SCSI_S_OK);
		used_head(&d, QC, (uint16_t)(d.vq[QC].used_seen - 1), &len);
		assert_int_equal(len, sizeof(*ar));
	}
	assert_true(wait_deliver(&e->k, d.q_data[QC]) >= 1);
	/* Nothing in flight: aborts and queries complete at once. */
	tmf_is(&d, VIRTIO_SCSI_T_TMF_ABORT_TASK, 0, 77, VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	used_head(&d, QC, (uint16_t)(d.vq[QC].used_seen - 1), &len);
	assert_int_equal(len, 1);
	tmf_is(&d, VIRTIO_SCSI_T_TMF_ABORT_TASK_SET, 0, 0, VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	tmf_is(&d, VIRTIO_SCSI_T_TMF_CLEAR_TASK_SET, 2, 0, VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	tmf_is(&d, VIRTIO_SCSI_T_TMF_QUERY_TASK, 0, 77, VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	tmf_is(&d, VIRTIO_SCSI_T_TMF_QUERY_TASK_SET, 0, 0, VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	/* LOGICAL UNIT RESET: a unit attention on that LUN only, reported
	 * once (INQUIRY does not report it). */
	tmf_is(&d, VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, 0, 0, VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	assert_int_equal(do_simple(&d, 2, 0x00, 0)->status, SCSI_STATUS_GOOD);
	assert_int_equal(do_simple(&d, 0, 0x12, 36)->status, SCSI_STATUS_GOOD);
	assert_sense(do_simple(&d, 0, 0x00, 0), SCSI_SENSE_UNIT_ATTENTION, 0x29, 0);
	assert_int_equal(do_simple(&d, 0, 0x00, 0)->status, SCSI_STATUS_GOOD);
	/* I_T NEXUS RESET: on every LUN. */
	tmf_is(&d, VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET, 0, 0, VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	assert_sense(do_simple(&d, 2, 0x00, 0), SCSI_SENSE_UNIT_ATTENTION, 0x29, 0);
	assert_sense(do_simple(&d, 0, 0x00, 0), SCSI_SENSE_UNIT_ATTENTION, 0x29, 0);
	assert_int_equal(do_simple(&d, 0, 0x00, 0)->status, SCSI_STATUS_GOOD);
	/* A LUN the target lacks, another target, unknown subtypes. */
	tmf_is(&d, VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, 1, 0, VIRTIO_SCSI_S_INCORRECT_LUN);
	tmf_is(&d, VIRTIO_SCSI_T_TMF_ABORT_TASK, 7, 0, VIRTIO_SCSI_S_INCORRECT_LUN);
	{
		struct virtio_scsi_ctrl_tmf_req q = {.type = VIRTIO_SCSI_T_TMF,
						     .subtype = VIRTIO_SCSI_T_TMF_ABORT_TASK};

		lun_bytes(q.lun, 0);
		q.lun[1] = 3;
		queue_ctrl(&d, 0, &q, sizeof(q), 1);
		kick(&d, QC, false);
		assert_true(wait_used(&d, QC, (uint16_t)++d.vq[QC].used_seen));
		assert_int_equal(ctrl_response(&d, 0), VIRTIO_SCSI_S_BAD_TARGET);
	}
	tmf_is(&d, VIRTIO_SCSI_T_TMF_CLEAR_ACA, 0, 0, VIRTIO_SCSI_S_FUNCTION_REJECTED);
	tmf_is(&d, 99, 0, 0, VIRTIO_SCSI_S_FUNCTION_REJECTED);
	assert_int_equal(status(&d), 0xf);

	/* Malformed control requests: NEEDS_RESET, repaired by a reset. */
	for (int k = 0; k < 4; k++) {
		struct virtio_scsi_ctrl_tmf_req q = {.type = VIRTIO_SCSI_T_TMF};

		type = 7;
		if (k == 0)
			queue_ctrl(&d, 0, &type, sizeof(type), 8); /* unknown type */
		else if (k == 1)
			queue_ctrl(&d, 0, &q, sizeof(q) - 1, 1); /* short TMF */
		else if (k == 2)
			queue_ctrl(&d, 0, &type, 2, 8); /* not even a type */
		else
			queue_ctrl(&d, 0, &an, sizeof(an), sizeof(*ar) - 1); /* short AN reply */
		kick(&d, QC, false);
		assert_true(wait_config_irq(&d));
		assert_int_not_equal(status(&d) & VIRTIO_STATUS_NEEDS_RESET, 0);
		scsi_reinit(&d);
		tmf_is(&d, VIRTIO_SCSI_T_TMF_ABORT_TASK, 0, 1, VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	}
	env_free(e);
}

/*
 * Fill the pool's sixteen workers with requests stuck on stalled pages
 * (tags 100 + slot): slot 0 a WRITE(10) of LBA 1000 on LUN 0, slot 1 one
 * of LBA 100 on LUN 2, slots 2-15 READ(10)s of LBA 1000 + slot on LUN 0.
 * One write per image: a writer faults holding the file's lock, so a
 * second one would wait for the lock, not on its page.
 */
static void stall_workers(struct stall *u, struct drv *d)
{
	for (unsigned s = 0; s < 16; s++) {
		struct cmd c = cmd_lun(s == 1 ? 2 : 0);

		stall_slot(u, s);
		c.tag = 100 + s;
		cdb_rw(c.cdb, false, s < 2, s == 1 ? 100 : 1000 + s, 1);
		if (s < 2)
			c.dout = 512;
		else
			c.din = 512;
		queue_cmd(d, s, &c);
	}
	kick(d, QR, false);
	stall_wait(u, 16);
}

/* Has the control queue returned @head among its first @n used entries? */
static bool ctrl_returned(struct drv *d, uint16_t head, uint16_t n)
{
	for (uint16_t i = 0; i < n; i++)
		if (used_head(d, QC, i, NULL) == head)
			return true;
	return false;
}

static bool req_returned(struct drv *d, uint16_t head)
{
	for (uint16_t i = 0; i < used_idx(d, QR); i++)
		if (used_head(d, QR, i, NULL) == head)
			return true;
	return false;
}

/* TMFs against requests really in flight (and one queued in the pool). */
static void test_abort_in_flight(void **st)
{
	static const char *const specs[] = {",aio=threads", ",lun=2,aio=threads"};
	struct env *e = env_new();
	char buf[2][160];
	struct errbuf err;
	struct stall u;
	struct cmd c;
	struct drv d;
	uint16_t abort_head, reset_head, n;

	(void)st;
	make_image(e, 0, 8 * MIB);
	make_image(e, 1, 1 * MIB);
	assert_int_equal(add_scsi(e, 2, specs, buf, &err), 0);
	scsi_up(&d, e);
	if (!stall_open(&u, &d)) {
		env_free(e);
		skip();
	}
	stall_workers(&u, &d);
	/* Slot 16: a write no worker can take yet (tag 116). */
	c = cmd_lun(0);
	c.tag = 116;
	cdb_rw(c.cdb, false, true, 2000, 1);
	c.dout = 512;
	memset(data(&d, 16), 0x16, 512);
	queue_cmd(&d, 16, &c);
	kick(&d, QR, false);
	wait_in_flight(&d, 116);
	/* QUERY TASK / QUERY TASK SET see them, on their LUN only. */
	tmf_is(&d, VIRTIO_SCSI_T_TMF_QUERY_TASK, 0, 103, VIRTIO_SCSI_S_FUNCTION_SUCCEEDED);
	tmf_is(&d, VIRTIO_SCSI_T_TMF_QUERY_TASK, 0, 999, VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	tmf_is(&d, VIRTIO_SCSI_T_TMF_QUERY_TASK, 2, 103, VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	tmf_is(&d, VIRTIO_SCSI_T_TMF_QUERY_TASK_SET, 0, 0, VIRTIO_SCSI_S_FUNCTION_SUCCEEDED);
	tmf_is(&d, VIRTIO_SCSI_T_TMF_QUERY_TASK_SET, 2, 0, VIRTIO_SCSI_S_FUNCTION_SUCCEEDED);
	assert_int_equal(used_idx(&d, QR), 0);

	/* ABORT TASK of the queued one: cancelled, returned ABORTED, never
	 * written; the TMF completes at once. */
	tmf_is(&d, VIRTIO_SCSI_T_TMF_ABORT_TASK, 0, 116, VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	assert_int_equal(used_idx(&d, QR), 1);
	assert_int_equal(used_head(&d, QR, 0, NULL), 4 * 16);
	assert_int_equal(resp(&d, 16)->response, VIRTIO_SCSI_S_ABORTED);
	assert_int_equal(file_byte(e, 0, 2000 * 512), 2000 & 0xff);

	/* ABORT TASK of tag 100, stuck in a worker: the TMF waits. A later
	 * control request completing proves the TMF was taken. */
	abort_head = queue_tmf(&d, 1, VIRTIO_SCSI_T_TMF_ABORT_TASK, 0, 100);
	kick(&d, QC, false);
	/* And a LOGICAL UNIT RESET for the other fourteen on LUN 0. */
	reset_head = queue_tmf(&d, 2, VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, 0, 0);
	kick(&d, QC, false);
	n = d.vq[QC].used_seen;
	tmf_is(&d, VIRTIO_SCSI_T_TMF_QUERY_TASK_SET, 2, 0,
	       VIRTIO_SCSI_S_FUNCTION_SUCCEEDED);	 /* slot 1: not aborted */
	assert_int_equal(used_head(&d, QC, n, NULL), 0); /* the query, first */
	assert_false(ctrl_returned(&d, abort_head, used_idx(&d, QC)));
	assert_false(ctrl_returned(&d, reset_head, used_idx(&d, QC)));
	/* Everything aborted: new queries find nothing to match. */
	tmf_is(&d, VIRTIO_SCSI_T_TMF_QUERY_TASK_SET, 0, 0, VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	d.vq[QC].used_seen = (uint16_t)(n + 2);

	/* Tag 100's worker goes on: the request returns ABORTED, and only
	 * then the ABORT TASK completes. */
	stall_release(&u, 0, 0x10);
	assert_true(wait_used(&d, QC, (uint16_t)(n + 3)));
	assert_int_equal(used_head(&d, QC, (uint16_t)(n + 2), NULL), abort_head);
	assert_int_equal(ctrl_response(&d, 1), VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	assert_true(req_returned(&d, 0));
	assert_int_equal(resp(&d, 0)->response, VIRTIO_SCSI_S_ABORTED);
	assert_false(ctrl_returned(&d, reset_head, used_idx(&d, QC)));
	/* The reset completes after the last of its fourteen. */
	for (unsigned s = 1; s < 16; s++) {
		assert_false(ctrl_returned(&d, reset_head, used_idx(&d, QC)));
		stall_release(&u, s, (uint8_t)s);
	}
	assert_true(wait_used(&d, QC, (uint16_t)(n + 4)));
	assert_int_equal(used_head(&d, QC, (uint16_t)(n + 3), NULL), reset_head);
	assert_int_equal(ctrl_response(&d, 2), VIRTIO_SCSI_S_FUNCTION_COMPLETE);
	assert_true(wait_used(&d, QR, 17)); /* slot 1 (LUN 2) is not the reset's */
	/* Slot 0 went to the ABORT TASK; a reset's cancellations return RESET. */
	for (unsigned s = 0; s < 16; s++)
		assert_int_equal(resp(&d, s)->response, s == 1	 ? VIRTIO_SCSI_S_OK
							: s == 0 ? VIRTIO_SCSI_S_ABORTED
								 : VIRTIO_SCSI_S_RESET);
	assert_int_equal(file_byte(e, 1, 100 * 512), 1); /* slot 1's page */
	d.vq[QC].used_seen = (uint16_t)(n + 4);
	d.vq[QR].used_seen = 17;
	stall_close(&u);
	/* The reset left its unit attention; the device goes on. */
	assert_sense(do_simple(&d, 0, 0x00, 0), SCSI_SENSE_UNIT_ATTENTION, 0x29, 0);
	c = cmd_lun(0);
	cdb_rw(c.cdb, false, false, 1000, 1);
	c.din = 512;
	assert_int_equal(do_cmd(&d, &c)->status, SCSI_STATUS_GOOD);
	assert_int_equal(status(&d), 0xf);
	env_free(e);
}

/* ---- werror / rerror ---- */

/* A VM with one LUN, "path=IMAGE" + @spec, on a fresh 8 MiB image, and
 * its driver up; the error log emptied. */
static struct env *one_lun_vm(struct drv *d, const char *spec, char (*buf)[160])
{
	const char *sp[1] = {spec};
	struct env *e = env_new();
	struct errbuf err;

	io_errors.n = 0;
	make_image(e, 0, 8 * MIB);
	if (add_scsi(e, 1, sp, buf, &err) < 0)
		fail_msg("%s", err.msg);
	scsi_up(d, e);
	return e;
}

static void test_error_policies(void **st)
{
	struct env *e;
	char buf[1][160];
	struct virtio_scsi_cmd_resp *r;
	struct scsi_sense want;
	struct cmd c;
	struct drv d;

	(void)st;
	static const struct {
		const char *spec;
		bool good;
		enum disk_error_action action;
	} w[] = {
	    {"", false, DISK_ACTION_REPORT}, /* default: report */
	    {",werror=report,aio=threads", false, DISK_ACTION_REPORT},
	    {",werror=ignore", true, DISK_ACTION_IGNORE},
	    {",werror=enospc", false, DISK_ACTION_REPORT}, /* EFBIG is not ENOSPC */
	};
	for (size_t i = 0; i < ARRAY_SIZE(w); i++) {
		e = one_lun_vm(&d, w[i].spec, buf);
		limit_file_size(4 * MIB);
		c = cmd_lun(0);
		cdb_rw(c.cdb, false, true, 6 * MIB / 512, 2);
		c.dout = 1024 + 7;
		r = do_cmd(&d, &c);
		if (w[i].good) {
			assert_int_equal(r->status, SCSI_STATUS_GOOD);
			assert_int_equal(r->resid, 7);
		} else {
			want = scsi_sense_from_errno(EFBIG, false);
			assert_sense(r, want.key, want.asc, want.ascq);
			assert_int_equal(r->sense[2], SCSI_SENSE_MEDIUM_ERROR);
			assert_int_equal(r->resid, 1024 + 7);
		}
		cdb_rw(c.cdb, false, true, 0, 1);
		assert_int_equal(do_cmd(&d, &c)->status, SCSI_STATUS_GOOD);
		assert_true(wait_io_errors(e, 1));
		assert_int_equal(io_errors.n, 1);
		assert_string_equal(io_errors.e[0].dev, "virtio-scsi0-lun0");
		assert_false(io_errors.e[0].is_read);
		assert_int_equal(io_errors.e[0].action, w[i].action);
		assert_int_equal(io_errors.e[0].error, EFBIG);
		limit_file_size(0);
		env_free(e);
	}

	/* rerror=report: the image shrinks under a read. */
	{
		e = one_lun_vm(&d, ",rerror=report", buf);
		assert_int_equal(truncate(e->path[0], 4 * MIB), 0);
		c = cmd_lun(0);
		cdb_rw(c.cdb, false, false, 5 * MIB / 512, 1);
		c.din = 512;
		assert_sense(do_cmd(&d, &c), SCSI_SENSE_MEDIUM_ERROR, 0x11, 0);
		assert_int_equal(resp(&d, 0)->resid, 512);
		assert_true(wait_io_errors(e, 1));
		assert_true(io_errors.e[0].is_read);
		assert_int_equal(io_errors.e[0].action, DISK_ACTION_REPORT);
		assert_int_equal(io_errors.e[0].error, EIO);
		env_free(e);
	}

	/* werror=stop: held, reported; the rest of the disk works; each
	 * resume (what cont does) retries it, and once the cause is gone it
	 * completes. */
	{
		e = one_lun_vm(&d, ",werror=stop,rerror=stop", buf);
		limit_file_size(4 * MIB);
		c = cmd_lun(0);
		cdb_rw(c.cdb, true, true, 6 * MIB / 512, 1);
		c.dout = 512;
		c.tag = 5;
		memset(data(&d, 1), 0x77, 512);
		queue_cmd(&d, 1, &c);
		kick(&d, QR, false);
		assert_true(wait_io_errors(e, 1));
		assert_int_equal(io_errors.e[0].action, DISK_ACTION_STOP);
		assert_string_equal(io_errors.e[0].dev, "virtio-scsi0-lun0");
		assert_int_equal(used_idx(&d, QR), 0);
		assert_int_equal(resp(&d, 1)->response, 0xee);
		/* Held: not in flight for the TMFs. */
		tmf_is(&d, VIRTIO_SCSI_T_TMF_QUERY_TASK, 0, 5, VIRTIO_SCSI_S_FUNCTION_COMPLETE);
		d.vq[QR].used_seen = 0;
		assert_int_equal(do_simple(&d, 0, 0x00, 0)->status, SCSI_STATUS_GOOD);
		virtio_scsi_ops.pause(e->state[0]);
		virtio_scsi_ops.resume(e->state[0]); /* still failing: held again */
		assert_true(wait_io_errors(e, 2));
		assert_int_equal(used_idx(&d, QR), 1);
		virtio_scsi_ops.pause(e->state[0]);
		limit_file_size(0);
		virtio_scsi_ops.resume(e->state[0]);
		assert_true(wait_used(&d, QR, 2));
		assert_int_equal(used_head(&d, QR, 1, NULL), 4);
		assert_int_equal(resp(&d, 1)->response, VIRTIO_SCSI_S_OK);
		assert_int_equal(resp(&d, 1)->status, SCSI_STATUS_GOOD);
		assert_int_equal(file_byte(e, 0, 6 * MIB), 0x77);
		d.vq[QR].used_seen = 2;
		/* A driver reset while a request is held does not wait for it. */
		io_errors.n = 0;
		limit_file_size(4 * MIB);
		queue_cmd(&d, 1, &c);
		kick(&d, QR, false);
		assert_true(wait_io_errors(e, 1));
		set_status(&d, 0);
		assert_int_equal(status(&d), 0);
		limit_file_size(0);
		scsi_reinit(&d);
		assert_int_equal(do_simple(&d, 0, 0x00, 0)->status, SCSI_STATUS_GOOD);
		env_free(e);
	}
}

/* ---- pause, snapshots ---- */

static void *pause_thread(void *state)
{
	virtio_scsi_ops.pause(state);
	return NULL;
}

/* Offsets in virtio-scsi's state (virtio_scsi.c: struct vscsi_snap, the
 * LUNs' struct vscsi_lun_snap, the requests' struct vscsi_req_snap). */
#define SN_LUN(i)    (24 + 16 * (i))
#define SN_REQ(n, k) (SN_LUN(n) + 88 * (k))
#define SN_STATE     4 /* in a request: 1 done, 2 new, 3 failed */

static struct drv *fresh_dev;

/* After a refusal: the PCI config is still the fresh device's. */
static void nothing_applied(const struct mutation *m)
{
	if (cfg_read(fresh_dev, PCI_COMMAND, 2))
		fail_msg("%s: refused, but the PCI config was loaded", m->what);
}

/*
 * The state of two LUNs with nineteen requests in flight: sixteen whose
 * host work finished while the device paused (held DONE: see
 * stall_workers), two the pause cancelled in the pool's queue (NEW:
 * a write in slot 16, a read in 17), one that failed with werror=stop
 * (FAILED: slot 20). Then: refusals of damaged states, each leaving the
 * device as it was, and the restore, after the images changed.
 */
static void test_snapshot(void **st)
{
	static const char *const specs[] = {",werror=stop,aio=threads", ",lun=2,aio=threads"};
	struct env *e = env_new();
	char buf[2][160];
	uint8_t *good = test_malloc(1 << 16);
	int idx_done = -1, idx_new = -1, idx_failed = -1, idx_new2 = -1;
	unsigned nstate[4] = {0};
	uint16_t heads[SLOTS];
	struct errbuf err;
	pthread_t t;
	struct stall u;
	struct cmd c;
	struct drv d;
	unsigned n = 0, c0;
	int len;

	(void)st;
	io_errors.n = 0;
	make_image(e, 0, 8 * MIB);
	make_image(e, 1, 1 * MIB);
	assert_int_equal(add_scsi(e, 2, specs, buf, &err), 0);
	scsi_up(&d, e);
	if (!stall_open(&u, &d)) {
		env_free(e);
		test_free(good);
		skip();
	}
	/* A paused device takes nothing; resumed, it does. */
	virtio_scsi_ops.pause(e->state[0]);
	queue_cmd(&d, 25, &(struct cmd){.lun = {1, 0, 0x40, 2}, .cdb = {0x00}});
	kick(&d, QR, false);
	nanosleep(&(struct timespec){0, 20000000}, NULL);
	assert_int_equal(used_idx(&d, QR), 0);
	virtio_scsi_ops.resume(e->state[0]);
	assert_true(wait_used(&d, QR, 1));
	assert_int_equal(resp(&d, 25)->status, SCSI_STATUS_GOOD);
	d.vq[QR].used_seen = 1;

	/* FAILED: slot 20, past the file size limit. */
	limit_file_size(4 * MIB);
	c = cmd_lun(0);
	c.tag = 120;
	cdb_rw(c.cdb, false, true, 6 * MIB / 512, 1);
	c.dout = 512;
	memset(data(&d, 20), 0x20, 512);
	heads[n++] = queue_cmd(&d, 20, &c);
	kick(&d, QR, false);
	assert_true(wait_io_errors(e, 1));
	/* Sixteen stuck in the workers, two queued behind them. */
	stall_workers(&u, &d);
	for (unsigned s = 0; s < 16; s++)
		heads[n++] = (uint16_t)(4 * s);
	c.tag = 116;
	cdb_rw(c.cdb, false, true, 2000, 1);
	memset(data(&d, 16), 0x66, 512);
	heads[n++] = queue_cmd(&d, 16, &c);
	c.tag = 117;
	cdb_rw(c.cdb, false, false, 3000, 1);
	c.dout = 0;
	c.din = 512;
	heads[n++] = queue_cmd(&d, 17, &c);
	kick(&d, QR, false);
	wait_in_flight(&d, 116);
	wait_in_flight(&d, 117);
	/* Pause: once it cancels, the device is paused; then the workers go
	 * on and their requests finish into the held list. */
	c0 = __atomic_load_n(&cancels, __ATOMIC_SEQ_CST);
	assert_int_equal(pthread_create(&t, NULL, pause_thread, e->state[0]), 0);
	for (int i = 0; i < 10000 && __atomic_load_n(&cancels, __ATOMIC_SEQ_CST) < c0 + 18; i++)
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	assert_int_equal(__atomic_load_n(&cancels, __ATOMIC_SEQ_CST), c0 + 18);
	for (unsigned s = 0; s < 16; s++)
		stall_release(&u, s, (uint8_t)(0x30 + s));
	assert_int_equal(pthread_join(t, NULL), 0);
	stall_close(&u);
	assert_int_equal(used_idx(&d, QR), 1);

	len = virtio_scsi_ops.save(e->state[0], good, 1 << 16);
	assert_true(len > SN_REQ(2, 19));
	assert_int_equal(*(uint32_t *)(good + 4), 2);  /* nluns */
	assert_int_equal(*(uint32_t *)(good + 8), 19); /* nrequests */
	for (int k = 0; k < 19; k++) {
		uint8_t s = good[SN_REQ(2, k) + SN_STATE];

		assert_true(s >= 1 && s <= 3);
		nstate[s]++;
		if (s == 1 && idx_done < 0)
			idx_done = k;
		if (s == 2)
			*(idx_new < 0 ? &idx_new : &idx_new2) = k;
		if (s == 3)
			idx_failed = k;
	}
	assert_int_equal(nstate[1], 16);
	assert_int_equal(nstate[2], 2);
	assert_int_equal(nstate[3], 1);
	/* Held DONE keeps its result: GOOD, nothing left over. */
	assert_int_equal(good[SN_REQ(2, idx_done) + 6], VIRTIO_SCSI_S_OK);
	assert_int_equal(good[SN_REQ(2, idx_done) + 7], SCSI_STATUS_GOOD);

	/* The images change between save and load: a request held DONE must
	 * not run again, a NEW one must. */
	for (unsigned s = 0; s < 16; s++)
		file_fill(e, 0, 1000 + s, 0x99);
	file_fill(e, 1, 100, 0x99);
	file_fill(e, 0, 3000, 0x99);
	env_readd_device(e, 0, "");
	limit_file_size(0);
	virtio_scsi_ops.pause(e->state[0]);

	/* Damaged states are refused, each naming what is wrong. */
	const struct mutation m[] = {
	    {"version", 0, 4, 0, 2, 0, "version 2"},
	    {"reserved", 20, 4, 0, 1, 0, "reserved"},
	    {"nluns", 4, 4, 0, 1, 0, "LUNs"},
	    {"cdb_size", 12, 4, 0, 257, 0, "out of range"},
	    {"cdb_size other", 12, 4, 0, 16, 0, "configuration"},
	    {"nrequests", 8, 4, 0, 2000, 0, "in flight"},
	    {"lun number", SN_LUN(1) + 8, 2, 0, 3, 0, "LUN 3"},
	    {"lun size", SN_LUN(0) + 0, 8, 1, 0, 0, "blocks"},
	    {"lun readonly", SN_LUN(1) + 10, 1, 1, 0, 0, "readonly"},
	    {"lun ua", SN_LUN(0) + 11, 1, 0, 2, 0, "bad state"},
	    {"lun io status", SN_LUN(0) + 12, 1, 0, 3, 0, "bad state"},
	    {"queue", SN_REQ(2, idx_done), 2, 0, 1, 0, "queue 1"},
	    {"state submitted", SN_REQ(2, idx_new) + 4, 1, 0, 0, 0, "state 0"},
	    {"state unknown", SN_REQ(2, idx_failed) + 4, 1, 0, 9, 0, "state 9"},
	    {"tmf flag", SN_REQ(2, idx_done) + 5, 1, 0, 1, 0, "task management"},
	    {"sense_len", SN_REQ(2, idx_done) + 8, 1, 0, 19, 0, "sense length"},
	    {"response", SN_REQ(2, idx_done) + 6, 1, 0, 13, 0, "response 13"},
	    {"req reserved", SN_REQ(2, idx_done) + 9, 1, 0, 1, 0, "reserved"},
	    {"req reserved2", SN_REQ(2, idx_done) + 42, 1, 0, 1, 0, "reserved"},
	    {"result of new", SN_REQ(2, idx_new) + 16, 4, 0, 5, 0, "has none"},
	    {"duplicate", SN_REQ(2, idx_new2) + 2, 2, 0, 0, SN_REQ(2, idx_new) + 2, "twice"},
	    {"cdb", SN_REQ(2, idx_done) + 48, 1, 1, 0, 0, "not the one saved"},
	    {"tag", SN_REQ(2, idx_new) + 80, 8, 1, 0, 0, "not the one saved"},
	    {"head", SN_REQ(2, idx_failed) + 2, 2, 0, 127, 0, "no saved request"},
	};
	fresh_dev = &d;
	check_mutations(&virtio_scsi_ops, e->state[0], good, (size_t)len, m, ARRAY_SIZE(m),
			nothing_applied);
	/* Truncated anywhere. */
	assert_int_equal(virtio_scsi_ops.load(e->state[0], good, 10, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "truncated"));
	assert_int_equal(virtio_scsi_ops.load(e->state[0], good, SN_REQ(2, 19) - 1, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "truncated"));
	assert_int_equal(virtio_scsi_ops.load(e->state[0], good, (size_t)len - 1, &err), -EINVAL);
	/* The CDB in guest memory is not the one saved (slot 16's). */
	((uint8_t *)gp(&d, S_REQ(16)))[REQ_HDR + 5] ^= 1;
	assert_int_equal(virtio_scsi_ops.load(e->state[0], good, (size_t)len, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not the one saved"));
	((uint8_t *)gp(&d, S_REQ(16)))[REQ_HDR + 5] ^= 1;
	/* Another LUN count on the command line. */
	e->cfg.nscsi_disks = 1;
	env_readd_device(e, 0, "");
	virtio_scsi_ops.pause(e->state[0]);
	assert_int_equal(virtio_scsi_ops.load(e->state[0], good, (size_t)len, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "2 LUNs"));
	e->cfg.nscsi_disks = 2;
	env_readd_device(e, 0, "");
	virtio_scsi_ops.pause(e->state[0]);
	/* A device not paused, or loaded already, refuses. */
	virtio_scsi_ops.resume(e->state[0]);
	assert_int_equal(virtio_scsi_ops.load(e->state[0], good, (size_t)len, &err), -EBUSY);
	virtio_scsi_ops.pause(e->state[0]);
	assert_int_equal(used_idx(&d, QR), 1);

	/* The good state loads, and everything completes once. */
	assert_int_equal(virtio_scsi_ops.load(e->state[0], good, (size_t)len, &err), 0);
	assert_int_not_equal(cfg_read(&d, PCI_COMMAND, 2), 0);
	virtio_scsi_ops.resume(e->state[0]);
	assert_true(wait_used(&d, QR, (uint16_t)(n + 1)));
	nanosleep(&(struct timespec){0, 20000000}, NULL);
	assert_int_equal(used_idx(&d, QR), n + 1);
	for (unsigned i = 0; i < n; i++) {
		unsigned seen = 0;

		for (uint16_t j = 1; j <= n; j++)
			seen += used_head(&d, QR, j, NULL) == heads[i];
		if (seen != 1)
			fail_msg("head %u returned %u times", heads[i], seen);
	}
	for (unsigned s = 0; s < 21; s++) {
		if (s > 17 && s != 20)
			continue;
		assert_int_equal(resp(&d, s)->response, VIRTIO_SCSI_S_OK);
		assert_int_equal(resp(&d, s)->status, SCSI_STATUS_GOOD);
	}
	/* DONE writes: not again; DONE reads: the data of before. */
	assert_int_equal(file_byte(e, 0, 1000 * 512), 0x99);
	assert_int_equal(file_byte(e, 1, 100 * 512), 0x99);
	for (unsigned s = 2; s < 16; s++)
		assert_int_equal(data(&d, s)[0], (1000 + s) & 0xff);
	assert_int_equal(file_byte(e, 0, 2000 * 512), 0x66); /* NEW write: done */
	assert_int_equal(data(&d, 17)[0], 0x99);	     /* NEW read: done now */
	assert_int_equal(file_byte(e, 0, 6 * MIB), 0x20);    /* FAILED: retried */
	d.vq[QR].used_seen = (uint16_t)(n + 1);
	assert_int_equal(do_simple(&d, 2, 0x00, 0)->status, SCSI_STATUS_GOOD);
	test_free(good);
	env_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config),
	    cmocka_unit_test_prestate(test_commands, ",aio=threads"),
	    cmocka_unit_test_prestate(test_commands, ",aio=io_uring"),
	    cmocka_unit_test(test_needs_reset),
	    cmocka_unit_test(test_control),
	    cmocka_unit_test(test_abort_in_flight),
	    cmocka_unit_test(test_error_policies),
	    cmocka_unit_test(test_snapshot),
	};

	alarm(120);		   /* a hang fails the run instead of stalling it */
	if (getenv("TEST_FILTER")) /* e.g. TEST_FILTER=test_snapshot */
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
