// SPDX-License-Identifier: MIT
/*
 * virtio-blk end to end without a guest: the test plays the driver through
 * the same paths a guest uses (config ports, BAR MMIO, rings in guest RAM,
 * doorbells), the device runs for real (iothread, thread pool, image file),
 * and a fake KVM behind struct kvm_irq_ops records ioeventfds and turns
 * irqfd writes into delivered MSI messages.
 *
 * Also: request parsing and execution on their own, hostile chains putting
 * the device into NEEDS_RESET (and back after a reset) while a second disk
 * keeps working, read-only disks, exit completing in-flight requests,
 * pause/resume, snapshot save/load with requests in flight (and every kind
 * of corrupted state refused), and werror/rerror with real host errors
 * (RLIMIT_FSIZE makes writes past a limit fail with EFBIG; a shrunk image
 * makes reads fail).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/pci_regs.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/virtio_harness.h"

#define DISK_SIZE (1ULL << 20)

/*
 * Wrapped (-Wl,--wrap) to test the request engine's choices, which
 * virtio-blk and virtio-scsi once made differently:
 *  - thread_pool_submit refuses the next fail_submits submissions;
 *  - disk_rw_full stops a write at the gate while gate_armed, until
 *    gate_open, so that a pause catches it running;
 *  - uring_submit, uring_reap and aio_poll record whether completions are
 *    reaped right after the submit, before the iothread polls again.
 */
struct thread_pool_req *__real_thread_pool_submit(struct thread_pool *pool, thread_pool_work_fn *fn,
						  void *arg, thread_pool_done_fn *done,
						  void *opaque);
struct thread_pool_req *__wrap_thread_pool_submit(struct thread_pool *pool, thread_pool_work_fn *fn,
						  void *arg, thread_pool_done_fn *done,
						  void *opaque);
int __real_disk_rw_full(int fd, struct iovec *iov, unsigned n, uint64_t off, bool write);
int __wrap_disk_rw_full(int fd, struct iovec *iov, unsigned n, uint64_t off, bool write);
int __real_uring_submit(struct uring *u);
int __wrap_uring_submit(struct uring *u);
unsigned __real_uring_reap(struct uring *u,
			   void (*cb)(void *opaque, uint64_t user_data, int32_t res), void *opaque);
unsigned __wrap_uring_reap(struct uring *u,
			   void (*cb)(void *opaque, uint64_t user_data, int32_t res), void *opaque);
bool __real_aio_poll(struct aio_context *ctx, bool blocking);
bool __wrap_aio_poll(struct aio_context *ctx, bool blocking);

static int fail_submits;
static int gate_armed, gate_entered, gate_open;
static __thread bool just_submitted;
static unsigned reaped_at_submit;

struct thread_pool_req *__wrap_thread_pool_submit(struct thread_pool *pool, thread_pool_work_fn *fn,
						  void *arg, thread_pool_done_fn *done,
						  void *opaque)
{
	if (__atomic_load_n(&fail_submits, __ATOMIC_ACQUIRE) > 0) {
		__atomic_sub_fetch(&fail_submits, 1, __ATOMIC_ACQ_REL);
		return NULL;
	}
	return __real_thread_pool_submit(pool, fn, arg, done, opaque);
}

int __wrap_disk_rw_full(int fd, struct iovec *iov, unsigned n, uint64_t off, bool write)
{
	if (write && __atomic_load_n(&gate_armed, __ATOMIC_ACQUIRE)) {
		__atomic_store_n(&gate_entered, 1, __ATOMIC_RELEASE);
		while (!__atomic_load_n(&gate_open, __ATOMIC_ACQUIRE))
			nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
	return __real_disk_rw_full(fd, iov, n, off, write);
}

int __wrap_uring_submit(struct uring *u)
{
	int r = __real_uring_submit(u);

	just_submitted = true;
	return r;
}

unsigned __wrap_uring_reap(struct uring *u,
			   void (*cb)(void *opaque, uint64_t user_data, int32_t res), void *opaque)
{
	unsigned n = __real_uring_reap(u, cb, opaque);

	if (just_submitted)
		__atomic_add_fetch(&reaped_at_submit, n, __ATOMIC_RELAXED);
	just_submitted = false;
	return n;
}

bool __wrap_aio_poll(struct aio_context *ctx, bool blocking)
{
	just_submitted = false; /* a completion seen from here on came by the ring's eventfd */
	return __real_aio_poll(ctx, blocking);
}

static int add_disk(struct env *e, int i, const char *extra, struct errbuf *err)
{
	char spec[160];

	snprintf(spec, sizeof(spec), "path=%s%s", e->path[i], extra);
	return env_add_device(e, i, &virtio_blk_ops, spec, err);
}

static void remove_disk(struct env *e, int i)
{
	env_remove_device(e, i);
}

/* Request buffers above queue 0's rings. */
#define R_IND	  0x8000   /* indirect tables */
#define R_HDR	  0x10000  /* request i: header at +32*i, status at +32*i+16 */
#define R_DATA	  0x100000 /* request i: data at +0x10000*i */
#define REQ_SLOTS 32

/* Queue request @slot (type, sector, @len data bytes; data writable for
 * reads) as a three-descriptor chain; returns its head. */
static uint16_t queue_req(struct drv *d, unsigned slot, uint32_t type, uint64_t sector,
			  uint32_t len)
{
	struct virtio_blk_outhdr h = {.type = type, .sector = sector};
	uint64_t hdr = d->mem + R_HDR + 32ULL * slot, data = d->mem + R_DATA + 0x10000ULL * slot;
	uint16_t head = (uint16_t)(3 * slot % d->vq[0].size);
	bool in = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;

	memcpy(gp(d, hdr), &h, sizeof(h));
	*(uint8_t *)gp(d, hdr + 16) = 0xee;
	if (len) {
		put_desc(d, d->mem + R_DESC, head, hdr, 16, VRING_DESC_F_NEXT, head + 1);
		put_desc(d, d->mem + R_DESC, head + 1, data, len,
			 VRING_DESC_F_NEXT | (in ? VRING_DESC_F_WRITE : 0), head + 2);
		put_desc(d, d->mem + R_DESC, head + 2, hdr + 16, 1, VRING_DESC_F_WRITE, 0);
	} else {
		put_desc(d, d->mem + R_DESC, head, hdr, 16, VRING_DESC_F_NEXT, head + 1);
		put_desc(d, d->mem + R_DESC, head + 1, hdr + 16, 1, VRING_DESC_F_WRITE, 0);
	}
	publish(d, 0, head);
	return head;
}

static uint8_t req_status(struct drv *d, unsigned slot)
{
	return *(uint8_t *)gp(d, d->mem + R_HDR + 32ULL * slot + 16);
}

static uint8_t *req_data(struct drv *d, unsigned slot)
{
	return gp(d, d->mem + R_DATA + 0x10000ULL * slot);
}

/* One request, synchronously; returns its status byte. */
static uint8_t do_req(struct drv *d, uint32_t type, uint64_t sector, uint32_t len)
{
	uint16_t target = (uint16_t)(d->vq[0].used_seen + 1);

	queue_req(d, 0, type, sector, len);
	kick(d, 0, false);
	assert_true(wait_used(d, 0, target));
	d->vq[0].used_seen = target;
	return req_status(d, 0);
}

/* drv_probe, and what is virtio-blk's: its class, config size, one queue. */
static void blk_probe(struct drv *d, struct env *e, unsigned slot, uint64_t mem)
{
	drv_probe(d, e, slot, mem, VIRTIO_ID_BLOCK);
	assert_int_equal(cfg_read(d, PCI_CLASS_DEVICE, 2), 0x0100);
	assert_int_equal(cfg_read(d, d->caps[VIRTIO_PCI_CAP_DEVICE_CFG] + 12, 4), 60);
	assert_int_equal(cfg_read(d, d->caps[VIRTIO_PCI_CAP_NOTIFY_CFG] + 12, 4), 4);
	assert_int_equal(d->nvec, 2);
	mmio_write(d, common(d) + VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	assert_int_equal(mmio_read(d, common(d) + VIRTIO_PCI_COMMON_Q_SIZE, 2),
			 VIRTIO_BLK_QUEUE_SIZE);
}

/* ---- parsing and execution on their own ---- */

static void test_parse_and_execute(void **st)
{
	uint8_t hdr[16] = {0}, status = 0xee, data[1024], id[32];
	struct virtio_blk_outhdr h = {.type = VIRTIO_BLK_T_IN, .sector = 2};
	char path[] = "/tmp/kvmini-test-blk-XXXXXX";
	struct blk_disk disk = {.nsectors = 8, .serial = "serial-123"};
	struct vq_elem *el = test_calloc(1, sizeof(*el) + 5 * sizeof(struct iovec));
	struct blk_req *r;
	const char *why = NULL;

	disk.fd = mkstemp(path);
	assert_true(disk.fd >= 0);
	for (int s = 0; s < 8; s++) {
		memset(data, 's' + s, 512);
		assert_int_equal(pwrite(disk.fd, data, 512, s * 512), 512);
	}
	memcpy(hdr, &h, sizeof(h));
	/* Header split over two buffers, data in two, status alone. */
	el->out_num = 2;
	el->in_num = 3;
	el->iov[0] = (struct iovec){hdr, 10};
	el->iov[1] = (struct iovec){hdr + 10, 6};
	el->iov[2] = (struct iovec){data, 512};
	el->iov[3] = (struct iovec){data + 512, 512};
	el->iov[4] = (struct iovec){&status, 1};
	el->out = el->iov;
	el->in = el->iov + 2;
	el->out_len = 16;
	el->in_len = 1025;
	r = blk_req_parse(el, &why);
	assert_non_null(r);
	assert_int_equal(r->type, VIRTIO_BLK_T_IN);
	assert_int_equal(r->sector, 2);
	assert_int_equal(r->len, 1024);
	assert_int_equal(r->niov, 2);
	assert_ptr_equal(r->status, &status);
	blk_req_execute(&disk, r);
	assert_int_equal(r->result, VIRTIO_BLK_S_OK);
	assert_int_equal(r->written, 1025);
	assert_int_equal(data[0], 's' + 2);
	assert_int_equal(data[1023], 's' + 3);
	/* Past the end: sector 7 + 2 sectors. */
	r->sector = 7;
	r->written = 1;
	blk_req_execute(&disk, r);
	assert_int_equal(r->result, VIRTIO_BLK_S_IOERR);
	assert_int_equal(r->written, 1);
	r->sector = UINT64_MAX; /* overflowing sector */
	blk_req_execute(&disk, r);
	assert_int_equal(r->result, VIRTIO_BLK_S_IOERR);
	/* Not a whole number of sectors. */
	r->sector = 0;
	r->len = 1000;
	r->iov[1].iov_len = 488;
	blk_req_execute(&disk, r);
	assert_int_equal(r->result, VIRTIO_BLK_S_IOERR);
	free(r);

	/* GET_ID into a 32-byte buffer: 20 bytes, zero-padded serial. */
	h.type = VIRTIO_BLK_T_GET_ID;
	memcpy(hdr, &h, sizeof(h));
	el->in_num = 2;
	el->iov[2] = (struct iovec){id, sizeof(id)};
	el->iov[3] = (struct iovec){&status, 1};
	el->in_len = sizeof(id) + 1;
	memset(id, 0xaa, sizeof(id));
	r = blk_req_parse(el, &why);
	assert_non_null(r);
	blk_req_execute(&disk, r);
	assert_int_equal(r->result, VIRTIO_BLK_S_OK);
	assert_int_equal(r->written, 21);
	assert_memory_equal(id, "serial-123\0\0\0\0\0\0\0\0\0\0", 20);
	assert_int_equal(id[20], 0xaa);
	/* Unknown type; read-only disk refuses writes but flushes fine. */
	r->type = 42;
	blk_req_execute(&disk, r);
	assert_int_equal(r->result, VIRTIO_BLK_S_UNSUPP);
	disk.readonly = true;
	r->type = VIRTIO_BLK_T_OUT;
	r->len = 0;
	blk_req_execute(&disk, r);
	assert_int_equal(r->result, VIRTIO_BLK_S_IOERR);
	r->type = VIRTIO_BLK_T_FLUSH;
	blk_req_execute(&disk, r);
	assert_int_equal(r->result, VIRTIO_BLK_S_OK);
	/* Host errors become IOERR: writing through a read-only descriptor. */
	disk.readonly = false;
	r->type = VIRTIO_BLK_T_OUT;
	r->sector = 0;
	r->len = 512;
	r->niov = 1;
	r->iov[0] = (struct iovec){data, 512};
	close(disk.fd);
	disk.fd = open(path, O_RDONLY);
	assert_true(disk.fd >= 0);
	blk_req_execute(&disk, r);
	assert_int_equal(r->result, VIRTIO_BLK_S_IOERR);
	close(disk.fd);
	disk.fd = open(path, O_RDWR);
	blk_req_execute(&disk, r);
	assert_int_equal(r->result, VIRTIO_BLK_S_OK);
	free(r);

	/* Chains that are not requests at all. */
	el->out_len = 15;
	assert_null(blk_req_parse(el, &why));
	assert_non_null(strstr(why, "header"));
	el->out_len = 16;
	el->in_num = 0;
	el->in_len = 0;
	assert_null(blk_req_parse(el, &why));
	assert_non_null(strstr(why, "status"));
	test_free(el);
	close(disk.fd);
	unlink(path);
}

/* ---- the whole device ---- */

static void test_io_end_to_end(void **st)
{
	const char *aio = aio_opt(st);
	struct env *e = env_new();
	struct errbuf err;
	struct drv d;
	uint8_t buf[4096];
	char opts[64];
	int fd;

	make_image(e, 0, DISK_SIZE);
	snprintf(opts, sizeof(opts), ",serial=abc%s", aio);
	assert_int_equal(add_disk(e, 0, opts, &err), 0);
	blk_probe(&d, e, 1, 0x200000);
	/* The doorbell is an ioeventfd at BAR 0 + 0x3000. */
	assert_int_equal(e->k.nioevfd, 1);
	assert_int_equal(e->k.ioevfd[0].addr, d.bar0 + VIRTIO_PCI_NOTIFY_OFF);
	/* Device config: capacity, seg_max, blk_size. */
	assert_int_equal(mmio_read(&d, d.bar0 + VIRTIO_PCI_DEVICE_OFF, 8), DISK_SIZE / 512);
	assert_int_equal(mmio_read(&d, d.bar0 + VIRTIO_PCI_DEVICE_OFF + 12, 4), 254);
	assert_int_equal(mmio_read(&d, d.bar0 + VIRTIO_PCI_DEVICE_OFF + 20, 4), 512);
	drv_init(&d, 64, ALL_FEATURES);
	assert_int_not_equal(d.features & (1ULL << VIRTIO_F_VERSION_1), 0);
	assert_int_not_equal(d.features & (1ULL << VIRTIO_RING_F_EVENT_IDX), 0);
	assert_int_not_equal(d.features & (1ULL << VIRTIO_BLK_F_DISCARD), 0);
	assert_int_equal(d.features & (1ULL << VIRTIO_BLK_F_RO), 0);

	/* Read sector 5 (filled with 5s). */
	assert_int_equal(do_req(&d, VIRTIO_BLK_T_IN, 5, 4096), VIRTIO_BLK_S_OK);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(req_data(&d, 0)[i], 5 + i / 512);
	/* The used length counts data and status. */
	assert_int_equal(*(uint32_t *)gp(&d, d.mem + R_USED + 8), 4097);
	assert_int_equal(wait_deliver(&e->k, d.q_data[0]), 1);

	/* Write sectors 10-11, read back through the file. */
	memset(req_data(&d, 0), 0x5a, 1024);
	assert_int_equal(do_req(&d, VIRTIO_BLK_T_OUT, 10, 1024), VIRTIO_BLK_S_OK);
	fd = open(e->path[0], O_RDWR);
	assert_int_equal(pread(fd, buf, 1024, 10 * 512), 1024);
	for (int i = 0; i < 1024; i++)
		assert_int_equal(buf[i], 0x5a);
	assert_int_equal(do_req(&d, VIRTIO_BLK_T_FLUSH, 0, 0), VIRTIO_BLK_S_OK);
	/* GET_ID. */
	assert_int_equal(do_req(&d, VIRTIO_BLK_T_GET_ID, 0, 20), VIRTIO_BLK_S_OK);
	assert_memory_equal(req_data(&d, 0), "abc\0\0", 5);
	/* WRITE_ZEROES over sectors 20-23, DISCARD of 24-31. */
	struct virtio_blk_discard_write_zeroes seg = {.sector = 20, .num_sectors = 4};
	memcpy(req_data(&d, 0), &seg, sizeof(seg));
	assert_int_equal(do_req(&d, VIRTIO_BLK_T_WRITE_ZEROES, 0, 16), VIRTIO_BLK_S_OK);
	assert_int_equal(pread(fd, buf, 4096, 19 * 512), 4096);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(buf[i], i < 512 ? 19 : i < 2560 ? 0 : 24 + (i - 2560) / 512);
	seg = (struct virtio_blk_discard_write_zeroes){.sector = 24, .num_sectors = 8};
	memcpy(req_data(&d, 0), &seg, sizeof(seg));
	assert_int_equal(do_req(&d, VIRTIO_BLK_T_DISCARD, 0, 16), VIRTIO_BLK_S_OK);
	seg.flags = 1; /* UNMAP is for write-zeroes only */
	memcpy(req_data(&d, 0), &seg, sizeof(seg));
	assert_int_equal(do_req(&d, VIRTIO_BLK_T_DISCARD, 0, 16), VIRTIO_BLK_S_UNSUPP);
	/* Errors the guest gets as status, not as a broken device. */
	assert_int_equal(do_req(&d, VIRTIO_BLK_T_IN, DISK_SIZE / 512 - 1, 1024),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(do_req(&d, VIRTIO_BLK_T_IN, 0, 100), VIRTIO_BLK_S_IOERR);
	assert_int_equal(do_req(&d, 77, 0, 512), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(status(&d), 0xf);

	/* Many in flight at once, doorbell through the MMIO exit path. */
	uint16_t target = (uint16_t)(d.vq[0].used_seen + 20);
	for (unsigned s = 0; s < 20; s++) {
		memset(req_data(&d, s), 100 + s, 8192);
		queue_req(&d, s, VIRTIO_BLK_T_OUT, 100 + 16 * s, 8192);
	}
	kick(&d, 0, true);
	assert_true(wait_used(&d, 0, target));
	d.vq[0].used_seen = target;
	for (unsigned s = 0; s < 20; s++) {
		assert_int_equal(req_status(&d, s), VIRTIO_BLK_S_OK);
		assert_int_equal(pread(fd, buf, 512, (100 + 16 * s + 15) * 512), 512);
		assert_int_equal(buf[0], 100 + s);
	}
	/* A host-side failure: the image shrinks under the device. Reads of
	 * what is gone fail with IOERR (on either back end); kvmini goes on. */
	assert_int_equal(truncate(e->path[0], 512 * 64), 0);
	assert_int_equal(do_req(&d, VIRTIO_BLK_T_IN, 100, 4096), VIRTIO_BLK_S_IOERR);
	assert_int_equal(do_req(&d, VIRTIO_BLK_T_IN, 1, 512), VIRTIO_BLK_S_OK);
	assert_int_equal(truncate(e->path[0], DISK_SIZE), 0);
	for (unsigned s = 0; s < 20; s++) {
		memset(req_data(&d, s), 100 + s, 8192);
		assert_int_equal(pwrite(fd, req_data(&d, s), 8192, (100 + 16 * s) * 512), 8192);
	}
	assert_int_equal(status(&d), 0xf);
	/* And reads of them back, all in one batch (one io_uring_enter). */
	target = (uint16_t)(d.vq[0].used_seen + 20);
	for (unsigned s = 0; s < 20; s++) {
		memset(req_data(&d, s), 0, 8192);
		queue_req(&d, s, VIRTIO_BLK_T_IN, 100 + 16 * s, 8192);
	}
	kick(&d, 0, false);
	assert_true(wait_used(&d, 0, target));
	d.vq[0].used_seen = target;
	for (unsigned s = 0; s < 20; s++) {
		assert_int_equal(req_status(&d, s), VIRTIO_BLK_S_OK);
		assert_int_equal(req_data(&d, s)[0], 100 + s);
		assert_int_equal(req_data(&d, s)[8191], 100 + s);
	}
	close(fd);
	env_free(e);
}

static void test_indirect_requests(void **st)
{
	const char *aio = aio_opt(st);
	struct env *e = env_new();
	struct errbuf err;
	struct drv d;
	uint64_t tbl;

	make_image(e, 0, DISK_SIZE);
	assert_int_equal(add_disk(e, 0, aio, &err), 0);
	blk_probe(&d, e, 1, 0x200000);
	drv_init(&d, 16, ALL_FEATURES);
	/* Header, 8 data segments of 512 bytes, status: one indirect table. */
	struct virtio_blk_outhdr h = {.type = VIRTIO_BLK_T_IN, .sector = 40};
	memcpy(gp(&d, d.mem + R_HDR), &h, sizeof(h));
	tbl = d.mem + R_IND;
	put_desc(&d, tbl, 0, d.mem + R_HDR, 16, VRING_DESC_F_NEXT, 1);
	for (unsigned i = 0; i < 8; i++)
		put_desc(&d, tbl, 1 + i, d.mem + R_DATA + 0x1000ULL * i, 512,
			 VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, (uint16_t)(2 + i));
	put_desc(&d, tbl, 9, d.mem + R_HDR + 16, 1, VRING_DESC_F_WRITE, 0);
	put_desc(&d, d.mem + R_DESC, 0, tbl, 10 * 16, VRING_DESC_F_INDIRECT, 0);
	publish(&d, 0, 0);
	kick(&d, 0, false);
	assert_true(wait_used(&d, 0, 1));
	assert_int_equal(req_status(&d, 0), VIRTIO_BLK_S_OK);
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(*(uint8_t *)gp(&d, d.mem + R_DATA + 0x1000ULL * i), 40 + i);
	env_free(e);
}

/* A hostile chain breaks only its device; a reset repairs it. */
static void test_hostile_chain_needs_reset(void **st)
{
	struct env *e = env_new();
	struct errbuf err;
	struct drv a, b;

	make_image(e, 0, DISK_SIZE);
	make_image(e, 1, DISK_SIZE);
	assert_int_equal(add_disk(e, 0, "", &err), 0);
	assert_int_equal(add_disk(e, 1, "", &err), 0);
	blk_probe(&a, e, 1, 0x200000);
	blk_probe(&b, e, 2, 0x800000);
	assert_int_not_equal(a.bar0, b.bar0);
	drv_init(&a, 16, ALL_FEATURES);
	drv_init(&b, 16, ALL_FEATURES);

	/* a: a descriptor loop. */
	put_desc(&a, a.mem + R_DESC, 0, a.mem + R_HDR, 16, VRING_DESC_F_NEXT, 1);
	put_desc(&a, a.mem + R_DESC, 1, a.mem + R_DATA, 512, VRING_DESC_F_NEXT, 0);
	publish(&a, 0, 0);
	kick(&a, 0, false);
	assert_true(wait_config_irq(&a));
	assert_int_equal(status(&a), 0xf | VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(mmio_read(&a, a.bar0 + VIRTIO_PCI_ISR_OFF, 1), VIRTIO_ISR_CONFIG);
	assert_int_equal(mmio_read(&a, a.bar0 + VIRTIO_PCI_ISR_OFF, 1), 0); /* read clears */
	/* The driver cannot clear NEEDS_RESET by writing the status. */
	set_status(&a, 0xf);
	assert_int_equal(status(&a), 0xf | VIRTIO_STATUS_NEEDS_RESET);
	/* Further requests are not processed. */
	queue_req(&a, 1, VIRTIO_BLK_T_IN, 0, 512);
	kick(&a, 0, false);

	/* b is unaffected. */
	assert_int_equal(do_req(&b, VIRTIO_BLK_T_IN, 3, 512), VIRTIO_BLK_S_OK);
	assert_int_equal(req_data(&b, 0)[0], 3);
	assert_int_equal(used_idx(&a, 0), 0);

	/* Reset a and use it again. */
	drv_init(&a, 16, ALL_FEATURES);
	assert_int_equal(do_req(&a, VIRTIO_BLK_T_IN, 7, 512), VIRTIO_BLK_S_OK);
	assert_int_equal(req_data(&a, 0)[0], 7);

	/* a: a request without a status byte (a protocol violation). */
	put_desc(&a, a.mem + R_DESC, 0, a.mem + R_HDR, 16, 0, 0);
	publish(&a, 0, 0);
	kick(&a, 0, false);
	assert_true(wait_config_irq(&a));
	assert_int_not_equal(status(&a) & VIRTIO_STATUS_NEEDS_RESET, 0);
	/* The bad chain was not returned: a broken device leaves the rings alone. */
	assert_int_equal(used_idx(&a, 0), a.vq[0].used_seen);
	/* a: buffer outside RAM after another reset. */
	drv_init(&a, 16, ALL_FEATURES);
	put_desc(&a, a.mem + R_DESC, 0, a.mem + R_HDR, 16, VRING_DESC_F_NEXT, 1);
	put_desc(&a, a.mem + R_DESC, 1, RAM - 256, 512, VRING_DESC_F_WRITE, 0);
	publish(&a, 0, 0);
	kick(&a, 0, false);
	assert_true(wait_config_irq(&a));
	assert_int_not_equal(status(&a) & VIRTIO_STATUS_NEEDS_RESET, 0);
	assert_int_equal(do_req(&b, VIRTIO_BLK_T_IN, 4, 512), VIRTIO_BLK_S_OK);
	env_free(e);
}

/* ---- external rings (vhost-user): the transport's side ---- */

/* A device whose rings "another process" serves: it records the hooks. */
struct ext_dev {
	struct virtio_dev vdev;
	int driver_ok_calls;
	int enabled[DRV_MAX_Q];
	bool rung_before_driver_ok; /* a doorbell had been rung when driver_ok ran */
	bool fail;		    /* driver_ok puts the device into NEEDS_RESET */
};

static bool ext_doorbell_rung(struct ext_dev *x, unsigned q)
{
	uint64_t n;

	return read(x->vdev.kicks[q].fd, &n, sizeof(n)) == sizeof(n);
}

static void ext_driver_ok(struct virtio_dev *vdev)
{
	struct ext_dev *x = vdev->opaque;

	x->driver_ok_calls++;
	for (unsigned q = 0; q < vdev->nqueues; q++)
		x->rung_before_driver_ok |= ext_doorbell_rung(x, q);
	if (x->fail)
		virtio_set_needs_reset(vdev, "test: the backend refused");
}

static void ext_queue_enabled(struct virtio_dev *vdev, unsigned q)
{
	struct ext_dev *x = vdev->opaque;

	x->enabled[q]++;
}

static const struct virtio_dev_ops ext_virtio_ops = {
    .driver_ok = ext_driver_ok,
    .queue_enabled = ext_queue_enabled,
};

static int ext_realize(struct vm *vm, const char *opts, void **state, struct errbuf *err)
{
	static const uint8_t config[8];
	struct ext_dev *x = calloc(1, sizeof(*x));
	struct virtio_dev_params p = {
	    .name = "ext0",
	    .device_id = VIRTIO_ID_BLOCK,
	    .pci_class = 0x010000,
	    .nqueues = 2,
	    .queue_size = 64,
	    .config = config,
	    .config_len = sizeof(config),
	    .ctx = vm->main_ctx,
	    .external = true, /* and no queue_notify */
	    .ops = &ext_virtio_ops,
	};
	int r;

	if (!x)
		return err_set(err, ENOMEM, "out of memory");
	p.opaque = x;
	r = virtio_pci_init(&x->vdev, vm, &p, err);
	if (r < 0) {
		free(x);
		return r;
	}
	*state = x;
	return 0;
}

static void ext_exit(void *state)
{
	struct ext_dev *x = state;

	virtio_pci_stop(&x->vdev);
	virtio_pci_exit(&x->vdev);
	free(x);
}

static const struct device_ops ext_device_ops = {
    .name = "ext",
    .realize = ext_realize,
    .exit = ext_exit,
};

/*
 * DRIVER_OK runs the device's hook before kvmini rings the enabled queues'
 * doorbells (a vhost-user device hands its rings over and waits for the
 * enable's acknowledgement there); queue enables reach the device; the
 * doorbells are nobody's in kvmini (they stay unread for the backend); a
 * hook that fails leaves NEEDS_RESET and rings nothing.
 */
static void test_external_rings(void **st)
{
	struct env *e = env_new();
	struct errbuf err;
	struct ext_dev *x;
	struct drv d;
	uint64_t c;

	assert_int_equal(env_add_device(e, 0, &ext_device_ops, NULL, &err), 0);
	x = e->state[0];
	drv_probe(&d, e, 1, 0x200000, VIRTIO_ID_BLOCK);
	drv_init(&d, 64, ALL_FEATURES);
	assert_int_equal(x->driver_ok_calls, 1);
	assert_int_equal(x->enabled[0], 1);
	assert_int_equal(x->enabled[1], 1);
	assert_false(x->rung_before_driver_ok);
	/* then kvmini rang both (buffers queued before DRIVER_OK) */
	assert_true(ext_doorbell_rung(x, 0));
	assert_true(ext_doorbell_rung(x, 1));
	/* a guest kick, through KVM or an exit, stays in the eventfd */
	kick(&d, 0, false);
	kick(&d, 1, true);
	assert_true(ext_doorbell_rung(x, 0));
	assert_true(ext_doorbell_rung(x, 1));

	x->fail = true;
	c = common(&d);
	set_status(&d, 0);
	set_status(&d, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	write_features(&d, 1ULL << VIRTIO_F_VERSION_1);
	set_status(&d, 0x0b);
	mmio_write(&d, c + VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	mmio_write(&d, c + VIRTIO_PCI_COMMON_Q_SIZE, 64, 2);
	mmio_write(&d, c + VIRTIO_PCI_COMMON_Q_DESCLO, (uint32_t)drv_ring(&d, 0, R_DESC), 4);
	mmio_write(&d, c + VIRTIO_PCI_COMMON_Q_AVAILLO, (uint32_t)drv_ring(&d, 0, R_AVAIL), 4);
	mmio_write(&d, c + VIRTIO_PCI_COMMON_Q_USEDLO, (uint32_t)drv_ring(&d, 0, R_USED), 4);
	mmio_write(&d, c + VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	assert_int_equal(x->enabled[0], 2);
	set_status(&d, 0x0f);
	assert_int_equal(x->driver_ok_calls, 2);
	assert_int_equal(status(&d), 0x0f | VIRTIO_STATUS_NEEDS_RESET);
	assert_false(ext_doorbell_rung(x, 0));
	env_free(e);
}

static void test_transport_rules(void **st)
{
	struct env *e = env_new();
	struct errbuf err;
	struct drv d;
	uint64_t c;

	make_image(e, 0, DISK_SIZE);
	assert_int_equal(add_disk(e, 0, "", &err), 0);
	blk_probe(&d, e, 1, 0x200000);
	c = common(&d);
	/* FEATURES_OK without VERSION_1 does not stick. */
	set_status(&d, 0);
	set_status(&d, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	write_features(&d, 1ULL << VIRTIO_BLK_F_FLUSH);
	set_status(&d, 0x0b);
	assert_int_equal(status(&d), 0x03);
	/* Nor with a feature the device did not offer. */
	write_features(&d, (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_BLK_F_MQ));
	set_status(&d, 0x0b);
	assert_int_equal(status(&d), 0x03);
	/* DRIVER_OK without FEATURES_OK does not stick either. */
	set_status(&d, 0x07);
	assert_int_equal(status(&d), 0x03);
	/* Features are frozen after FEATURES_OK. */
	write_features(&d, 1ULL << VIRTIO_F_VERSION_1);
	set_status(&d, 0x0b);
	assert_int_equal(status(&d), 0x0b);
	write_features(&d, (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_BLK_F_FLUSH));
	mmio_write(&d, c + VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
	assert_int_equal(mmio_read(&d, c + VIRTIO_PCI_COMMON_GF, 4), 0);
	/* Clearing a status bit is ignored. */
	set_status(&d, 0x01);
	assert_int_equal(status(&d), 0x0b);
	/* A vector the device lacks reads back as NO_VECTOR. */
	mmio_write(&d, c + VIRTIO_PCI_COMMON_MSIX, 5, 2);
	assert_int_equal(mmio_read(&d, c + VIRTIO_PCI_COMMON_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	/* A queue that does not exist reads as size 0 and ignores writes. */
	mmio_write(&d, c + VIRTIO_PCI_COMMON_Q_SELECT, 3, 2);
	assert_int_equal(mmio_read(&d, c + VIRTIO_PCI_COMMON_Q_SIZE, 2), 0);
	mmio_write(&d, c + VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	assert_int_equal(mmio_read(&d, c + VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	/* Bytes past the common structure read as zero. */
	assert_int_equal(mmio_read(&d, c + 0x100, 4), 0);
	/* A queue size that is not a power of two: NEEDS_RESET. */
	mmio_write(&d, c + VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	mmio_write(&d, c + VIRTIO_PCI_COMMON_Q_SIZE, 100, 2);
	assert_int_not_equal(status(&d) & VIRTIO_STATUS_NEEDS_RESET, 0);
	/* Rings outside RAM: NEEDS_RESET at enable. */
	set_status(&d, 0);
	assert_int_equal(status(&d), 0);
	set_status(&d, 0x03);
	write_features(&d, 1ULL << VIRTIO_F_VERSION_1);
	set_status(&d, 0x0b);
	mmio_write(&d, c + VIRTIO_PCI_COMMON_Q_DESCLO, 0xfffff000, 4);
	mmio_write(&d, c + VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	assert_int_equal(mmio_read(&d, c + VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	assert_int_not_equal(status(&d) & VIRTIO_STATUS_NEEDS_RESET, 0);
	/* The PCI configuration access window reaches the same registers. */
	set_status(&d, 0);
	unsigned w = d.caps[VIRTIO_PCI_CAP_PCI_CFG];
	cfg_write(&d, w + 4, 0, 1); /* BAR 0 */
	cfg_write(&d, w + 8, VIRTIO_PCI_COMMON_STATUS, 4);
	cfg_write(&d, w + 12, 1, 4); /* 1 byte */
	cfg_write(&d, w + 16, 0x01, 4);
	assert_int_equal(status(&d), 0x01);
	assert_int_equal(cfg_read(&d, w + 16, 1), 0x01);
	cfg_write(&d, w + 8, VIRTIO_PCI_COMMON_NUMQ, 4);
	cfg_write(&d, w + 12, 2, 4);
	assert_int_equal(cfg_read(&d, w + 16, 2), 1);
	cfg_write(&d, w + 12, 3, 4); /* bad length: nothing happens */
	cfg_write(&d, w + 8, VIRTIO_PCI_COMMON_STATUS, 4);
	cfg_write(&d, w + 16, 0x03, 4);
	assert_int_equal(status(&d), 0x01);
	/* Moving BAR 0 moves the ioeventfd. */
	cfg_write(&d, PCI_BASE_ADDRESS_0, 0xd0000000, 4);
	assert_int_equal(e->k.nioevfd, 1);
	assert_int_equal(e->k.ioevfd[0].addr, 0xd0000000 + VIRTIO_PCI_NOTIFY_OFF);
	cfg_write(&d, PCI_COMMAND, 0, 2);
	assert_int_equal(e->k.nioevfd, 0);
	env_free(e);
}

static void test_readonly_disk(void **st)
{
	struct env *e = env_new();
	struct errbuf err;
	struct drv d;

	make_image(e, 0, DISK_SIZE);
	chmod(e->path[0], 0400);
	assert_int_equal(add_disk(e, 0, ",readonly=on", &err), 0);
	blk_probe(&d, e, 1, 0x200000);
	drv_init(&d, 16, ALL_FEATURES);
	assert_int_not_equal(d.features & (1ULL << VIRTIO_BLK_F_RO), 0);
	assert_int_equal(d.features & (1ULL << VIRTIO_BLK_F_DISCARD), 0);
	assert_int_equal(d.features & (1ULL << VIRTIO_BLK_F_WRITE_ZEROES), 0);
	assert_int_equal(do_req(&d, VIRTIO_BLK_T_OUT, 0, 512), VIRTIO_BLK_S_IOERR);
	assert_int_equal(do_req(&d, VIRTIO_BLK_T_WRITE_ZEROES, 0, 16), VIRTIO_BLK_S_IOERR);
	assert_int_equal(do_req(&d, VIRTIO_BLK_T_IN, 1, 512), VIRTIO_BLK_S_OK);
	assert_int_equal(req_data(&d, 0)[0], 1);
	assert_int_equal(do_req(&d, VIRTIO_BLK_T_FLUSH, 0, 0), VIRTIO_BLK_S_OK);
	env_free(e);
}

static void test_bad_images(void **st)
{
	struct env *e = env_new();
	struct errbuf err;

	make_image(e, 0, 1000); /* not a multiple of 512 */
	assert_int_equal(add_disk(e, 0, "", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not a multiple of 512"));
	strcpy(e->path[1], "/tmp/kvmini-test-no-such-image");
	assert_int_equal(add_disk(e, 1, "", &err), -ENOENT);
	assert_non_null(strstr(err.msg, "kvmini-test-no-such-image"));
	e->path[1][0] = '\0';
	strcpy(e->path[1], "/tmp");
	assert_true(add_disk(e, 1, ",readonly=on", &err) < 0);
	assert_non_null(strstr(err.msg, "not a regular file"));
	e->path[1][0] = '\0';
	/* Nothing was left on the bus. */
	assert_null(e->host.slots[1]);
	env_free(e);
}

static void test_exit_completes_inflight(void **st)
{
	const char *aio = aio_opt(st);
	struct env *e = env_new();
	struct errbuf err;
	struct drv d;
	uint8_t buf[512];
	uint16_t done;
	int fd;

	make_image(e, 0, 8ULL << 20);
	assert_int_equal(add_disk(e, 0, aio, &err), 0);
	blk_probe(&d, e, 1, 0x200000);
	drv_init(&d, 128, ALL_FEATURES);
	/* Writes (pool) and reads (io_uring, unless aio=threads) mixed. */
	for (unsigned s = 0; s < REQ_SLOTS; s++) {
		memset(req_data(&d, s), 0xc0 + s % 32, 0x10000);
		queue_req(&d, s, s % 2 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT, 128ULL * s, 0x10000);
	}
	kick(&d, 0, false);
	/* Let the device pick some up, then stop the VM under it. */
	while (used_idx(&d, 0) == 0 && e->vm.devices[0].state)
		nanosleep(&(struct timespec){0, 100000}, NULL);
	remove_disk(e, 0);
	done = used_idx(&d, 0);
	assert_true(done >= 1 && done <= REQ_SLOTS);
	/* Every request the device returned completed: writes landed in the
	 * file, reads brought the image's bytes (sector n holds n & 0xff). */
	fd = open(e->path[0], O_RDONLY);
	for (uint16_t i = 0; i < done; i++) {
		uint32_t head = *(uint32_t *)gp(&d, d.mem + R_USED + 4 + 8 * i);
		unsigned s = head / 3;

		assert_int_equal(req_status(&d, s), VIRTIO_BLK_S_OK);
		if (s % 2) {
			assert_int_equal(req_data(&d, s)[0xffff], (128 * s + 127) & 0xff);
			continue;
		}
		assert_int_equal(pread(fd, buf, 512, (off_t)((128ULL * s + 127) * 512)), 512);
		assert_int_equal(buf[0], 0xc0 + s % 32);
	}
	close(fd);
	env_free(e);
}

/* ---- pause, snapshots, error policies ---- */

/* Re-realize disk @i on its image (its old state is gone): the VM is
 * restored with a fresh device. */
static void readd_disk(struct env *e, int i, const char *opts)
{
	char spec[160];

	snprintf(spec, sizeof(spec), "path=%s%s", e->path[i], opts);
	env_readd_device(e, i, spec);
}

/*
 * Slots [0, 24): writes of 0x10000 bytes (even) and reads (odd) below 4 MiB;
 * slots [24, 24 + nbig): writes at 6 MiB. Returns the number queued;
 * heads[] gets their heads.
 */
static unsigned queue_mix(struct drv *d, unsigned nbig, uint16_t *heads)
{
	unsigned n = 0;

	for (unsigned s = 0; s < 24; s++, n++) {
		memset(req_data(d, s), 0xc0 + s, 0x10000);
		heads[n] = queue_req(d, s, s % 2 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT, 128ULL * s,
				     0x10000);
	}
	for (unsigned s = 24; s < 24 + nbig; s++, n++) {
		memset(req_data(d, s), 0xc0 + s, 0x10000);
		heads[n] = queue_req(d, s, VIRTIO_BLK_T_OUT, 6 * MIB / 512 + 128ULL * s, 0x10000);
	}
	return n;
}

/* Every request of queue_mix completed OK and did what it said. */
static void check_mix(struct env *e, struct drv *d, unsigned nbig)
{
	uint8_t buf[512];
	int fd = open(e->path[0], O_RDONLY);

	assert_true(fd >= 0);
	for (unsigned s = 0; s < 24 + nbig; s++) {
		uint64_t sector = s < 24 ? 128ULL * s : 6 * MIB / 512 + 128ULL * s;

		assert_int_equal(req_status(d, s), VIRTIO_BLK_S_OK);
		if (s < 24 && s % 2) {
			/* Sector n of the image holds n & 0xff. */
			assert_int_equal(req_data(d, s)[0xffff], (sector + 127) & 0xff);
			continue;
		}
		assert_int_equal(pread(fd, buf, 512, (off_t)((sector + 127) * 512)), 512);
		assert_int_equal(buf[511], 0xc0 + s);
	}
	close(fd);
}

static void test_pause_resume(void **st)
{
	const char *aio = aio_opt(st);
	struct env *e = env_new();
	struct errbuf err;
	struct drv d;
	uint16_t heads[32];
	uint16_t u;
	unsigned n;

	make_image(e, 0, 8 * MIB);
	assert_int_equal(add_disk(e, 0, aio, &err), 0);
	blk_probe(&d, e, 1, 0x200000);
	drv_init(&d, 128, ALL_FEATURES);
	n = queue_mix(&d, 0, heads);
	/* Flushes of freshly written data keep the pool's workers busy (on a
	 * disk file system): the pause likely finds requests running and
	 * queued. Whatever it finds, each must complete exactly once. */
	for (unsigned s = 24; s < 28; s++)
		heads[n++] = queue_req(&d, s, VIRTIO_BLK_T_FLUSH, 0, 0);
	kick(&d, 0, false);
	virtio_blk_ops.pause(e->state[0]);
	u = used_idx(&d, 0);
	/* Paused: nothing is returned, nothing new is taken, no interrupt
	 * (EVENT_IDX: the driver asks for one at the next completion). */
	fake_deliver(&e->k, d.q_data[0]);
	__atomic_store_n((uint16_t *)gp(&d, d.mem + R_AVAIL + 4 + 2 * d.vq[0].size), u,
			 __ATOMIC_RELEASE);
	for (unsigned s = 28; s < 32; s++) /* sector 131 is only ever read */
		heads[n++] = queue_req(&d, s, VIRTIO_BLK_T_IN, 131, 512);
	kick(&d, 0, false);
	nanosleep(&(struct timespec){0, 30000000}, NULL);
	assert_int_equal(used_idx(&d, 0), u);
	assert_int_equal(fake_deliver(&e->k, d.q_data[0]), 0);
	/* Resume: everything held or queued completes, each exactly once. */
	virtio_blk_ops.resume(e->state[0]);
	assert_true(wait_used(&d, 0, 32));
	nanosleep(&(struct timespec){0, 20000000}, NULL);
	assert_int_equal(used_idx(&d, 0), 32);
	assert_used_once(&d, 0, heads, 32);
	check_mix(e, &d, 0);
	for (unsigned s = 24; s < 32; s++)
		assert_int_equal(req_status(&d, s), VIRTIO_BLK_S_OK);
	for (unsigned s = 28; s < 32; s++)
		assert_int_equal(req_data(&d, s)[0], 131);
	assert_true(wait_deliver(&e->k, d.q_data[0]) >= 1);
	/* Pause and resume are idempotent per call pair, and the device
	 * works on afterwards. */
	virtio_blk_ops.pause(e->state[0]);
	virtio_blk_ops.resume(e->state[0]);
	d.vq[0].used_seen = 32;
	assert_int_equal(do_req(&d, VIRTIO_BLK_T_IN, 133, 512), VIRTIO_BLK_S_OK);
	assert_int_equal(req_data(&d, 0)[0], 133);

	/* The vCPUs may still run while devices pause: a driver reset then
	 * drops what is held instead of waiting for it, and the device comes
	 * back after resume. */
	n = queue_mix(&d, 0, heads);
	kick(&d, 0, false);
	virtio_blk_ops.pause(e->state[0]);
	set_status(&d, 0);
	assert_int_equal(status(&d), 0);
	virtio_blk_ops.resume(e->state[0]);
	drv_init(&d, 128, ALL_FEATURES);
	assert_int_equal(do_req(&d, VIRTIO_BLK_T_IN, 133, 512), VIRTIO_BLK_S_OK);
	assert_int_equal(req_data(&d, 0)[0], 133);
	env_free(e);
}

static void test_snapshot_restore(void **st)
{
	const char *aio = aio_opt(st);
	struct env *e = env_new();
	struct errbuf err;
	struct drv d;
	uint16_t heads[32];
	uint8_t *buf = test_malloc(1 << 16);
	char opts[64];
	unsigned n;
	int len;

	snprintf(opts, sizeof(opts), ",werror=stop%s", aio);
	io_errors.n = 0;
	make_image(e, 0, 8 * MIB);
	assert_int_equal(add_disk(e, 0, opts, &err), 0);
	blk_probe(&d, e, 1, 0x200000);
	drv_init(&d, 128, ALL_FEATURES);
	/* Four writes fail (EFBIG) and are held: certainly in flight. */
	limit_file_size(4 * MIB);
	n = queue_mix(&d, 4, heads);
	/* And flushes, which take a while: likely still running at pause. */
	for (unsigned s = 28; s < 32; s++)
		heads[n++] = queue_req(&d, s, VIRTIO_BLK_T_FLUSH, 0, 0);
	kick(&d, 0, false);
	assert_true(wait_io_errors(e, 4));
	for (int i = 0; i < 4; i++) {
		assert_string_equal(io_errors.e[i].dev, "virtio-blk0");
		assert_false(io_errors.e[i].is_read);
		assert_int_equal(io_errors.e[i].action, DISK_ACTION_STOP);
		assert_int_equal(io_errors.e[i].error, EFBIG);
	}
	virtio_blk_ops.pause(e->state[0]);
	assert_true(used_idx(&d, 0) <= n - 4);
	len = virtio_blk_ops.save(e->state[0], buf, 1 << 16);
	assert_true(len > 0);
	/* nrequests (header) = what the queue has in flight. */
	assert_int_equal(*(uint32_t *)(buf + 4), n - used_idx(&d, 0));

	/* The source goes away (its held requests are dropped, not run); the
	 * cause is fixed; a fresh device loads the state and is resumed. */
	readd_disk(e, 0, opts);
	limit_file_size(0);
	virtio_blk_ops.pause(e->state[0]);
	assert_int_equal(virtio_blk_ops.load(e->state[0], buf, (size_t)len, &err), 0);
	virtio_blk_ops.resume(e->state[0]);
	assert_true(wait_used(&d, 0, (uint16_t)n));
	nanosleep(&(struct timespec){0, 20000000}, NULL);
	assert_int_equal(used_idx(&d, 0), n);
	assert_used_once(&d, 0, heads, n);
	check_mix(e, &d, 4);
	for (unsigned s = 28; s < 32; s++)
		assert_int_equal(req_status(&d, s), VIRTIO_BLK_S_OK);
	/* The restored device goes on working, doorbell and interrupt too
	 * (EVENT_IDX: the driver asks for one after the next completion). */
	fake_deliver(&e->k, d.q_data[0]);
	d.vq[0].used_seen = (uint16_t)n;
	__atomic_store_n((uint16_t *)gp(&d, d.mem + R_AVAIL + 4 + 2 * d.vq[0].size), (uint16_t)n,
			 __ATOMIC_RELEASE);
	assert_int_equal(do_req(&d, VIRTIO_BLK_T_IN, 133, 512), VIRTIO_BLK_S_OK);
	assert_int_equal(req_data(&d, 0)[0], 133);
	assert_int_equal(wait_deliver(&e->k, d.q_data[0]), 1);
	test_free(buf);
	env_free(e);
}

/* Offsets in virtio-blk's snapshot of a one-queue device with 2 vectors
 * and 60 config bytes (devices/virtio: struct blk_snap, then struct
 * virtio_pci_snap, config, MSI-X table, PBA, struct vq_snap). */
#define SN_BLK	   0
#define SN_VP	   24
#define SN_CONFIG  (SN_VP + 48 + 256)
#define SN_TABLE   (SN_CONFIG + 64)
#define SN_PENDING (SN_TABLE + 32)
#define SN_VQ	   (SN_PENDING + 8)
#define SN_REQS	   (SN_VQ + (int)sizeof(struct vq_snap)) /* then a record per held request */
#define SN_REQ	   12
#define SN_TOTAL   (SN_REQS + 2 * SN_REQ)

static void test_snapshot_rejects_corruption(void **st)
{
	static const struct mutation m[] = {
	    {"blk version", SN_BLK, 4, 0, 3, 0, "state version 3"},
	    {"nrequests", SN_BLK + 4, 4, 3, 0, 0, "expected 2504"},
	    {"capacity", SN_BLK + 8, 8, 8, 0, 0, "sectors"},
	    {"readonly", SN_BLK + 16, 1, 1, 0, 0, "readonly"},
	    {"io-status", SN_BLK + 17, 1, 0, 9, 0, "io-status"},
	    {"blk reserved", SN_BLK + 20, 1, 1, 0, 0, "reserved"},
	    {"virtio version", SN_VP, 4, 0, 3, 0, "virtio state version 3"},
	    {"nqueues", SN_VP + 4, 2, 0, 2, 0, "queues"},
	    {"nvec", SN_VP + 6, 2, 0, 3, 0, "MSI-X vectors"},
	    {"host features", SN_VP + 24, 8, 1ULL << VIRTIO_BLK_F_RO, 0, 0, "offered features"},
	    {"guest features", SN_VP + 32, 8, 1ULL << 50, 0, 0, "not a valid subset"},
	    {"status bits", SN_VP + 40, 1, 0x10, 0, 0, "unknown bits"},
	    {"needs reset", SN_VP + 40, 1, 0x40, 0, 0, "disagree"},
	    {"broken", SN_VP + 43, 1, 1, 0, 0, "disagree"},
	    {"features ok", SN_VP + 40, 1, VIRTIO_CONFIG_S_FEATURES_OK, 0, 0,
	     "without FEATURES_OK"},
	    {"isr", SN_VP + 41, 1, 0x80, 0, 0, "ISR"},
	    {"config vector", SN_VP + 46, 2, 0, 2, 0, "config vector 2"},
	    {"pci vendor", SN_VP + 48, 1, 1, 0, 0, "read-only config byte 0x00"},
	    {"pci status", SN_VP + 48 + 7, 1, 0x80, 0, 0, "status bits"},
	    {"device config", SN_CONFIG, 1, 1, 0, 0, "configuration differs"},
	    {"msix address", SN_TABLE + 16, 4, 1, 0, 0, "not dword aligned"},
	    {"msix control", SN_TABLE + 12, 4, 0x100, 0, 0, "reserved bits"},
	    {"msix pending", SN_PENDING, 8, 4, 0, 0, "pending bit 2"},
	    {"queue size", SN_VQ + 24, 2, 0, 100, 0, "power of two"},
	    {"queue size max", SN_VQ + 24, 2, 0, 512, 0, "power of two"},
	    {"queue vector", SN_VQ + 26, 2, 0, 7, 0, "vector 7"},
	    {"queue enabled", SN_VQ + 28, 2, 0, 2, 0, "flag"},
	    {"desc misaligned", SN_VQ + 0, 8, 4, 0, 0, "misaligned"},
	    {"used outside ram", SN_VQ + 16, 8, 0, RAM - 8, 0, "outside guest RAM"},
	    {"used_idx", SN_VQ + 32, 2, 1, 0, 0, "last_avail_idx"},
	    {"inuse", SN_VQ + 38, 2, 0, 0, 0, "past"},
	    {"head range", SN_VQ + 48, 2, 0, 128, 0, "out of range"},
	    {"head twice", SN_VQ + 50, 2, 0, 0, SN_VQ + 48, "twice"},
	    {"head extra", SN_VQ + 48 + 2 * 100, 2, 0, 5, 0, "past"},
	    {"queue reserved", SN_VQ + 41, 1, 1, 0, 0, "reserved"},
	    {"request queue", SN_REQS, 2, 1, 0, 0, "saved request 0: queue 1"},
	    {"request state", SN_REQS + 4, 1, 0, 9, 0, "saved request 0: state 9"},
	    {"request result", SN_REQS + 5, 1, 1, 0, 0, "a result for a request that has none"},
	    {"request reserved", SN_REQS + 6, 1, 1, 0, 0, "reserved"},
	    {"request twice", SN_REQS + SN_REQ + 2, 2, 0, 0, SN_REQS + 2, "there twice"},
	    {"request head", SN_REQS + 2, 2, 0x40, 0, 0, "has no saved request"},
	};
	struct env *e = env_new();
	struct errbuf err;
	struct drv d;
	uint16_t heads[32];
	uint8_t *good = test_malloc(1 << 16);
	uint16_t first_head;
	unsigned n;
	int len;

	io_errors.n = 0;
	make_image(e, 0, 8 * MIB);
	assert_int_equal(add_disk(e, 0, ",werror=stop,aio=threads", &err), 0);
	blk_probe(&d, e, 1, 0x200000);
	drv_init(&d, 128, ALL_FEATURES);
	limit_file_size(4 * MIB);
	n = queue_mix(&d, 2, heads);
	kick(&d, 0, false);
	assert_true(wait_io_errors(e, 2));
	/* Everything else done: exactly the two failed writes are held, so
	 * the section has a known size and two request records. */
	assert_true(wait_used(&d, 0, (uint16_t)(n - 2)));
	virtio_blk_ops.pause(e->state[0]);
	len = virtio_blk_ops.save(e->state[0], good, 1 << 16);
	assert_int_equal(len, SN_TOTAL);
	memcpy(&first_head, good + SN_VQ + 48, 2);
	readd_disk(e, 0, ",werror=stop,aio=threads");
	limit_file_size(0);
	virtio_blk_ops.pause(e->state[0]);

	check_mutations(&virtio_blk_ops, e->state[0], good, (size_t)len, m, ARRAY_SIZE(m), NULL);
	/* Truncated, and too long. */
	assert_int_equal(virtio_blk_ops.load(e->state[0], good, 10, &err), -EINVAL);
	assert_int_equal(virtio_blk_ops.load(e->state[0], good, (size_t)len - 1, &err), -EINVAL);
	/* The records sit at the end: cut short, they are read one byte off. */
	assert_true(strstr(err.msg, "expected") || strstr(err.msg, "saved request"));
	/* In-flight chains are read and checked again from guest RAM: a
	 * buffer of length 0, a request with no status byte. */
	{
		uint8_t *desc = gp(&d, d.mem + R_DESC + 16ULL * (first_head + 1));
		uint8_t saved[16];

		memcpy(saved, desc, 16);
		memset(desc + 8, 0, 4);
		assert_int_equal(virtio_blk_ops.load(e->state[0], good, (size_t)len, &err),
				 -EINVAL);
		assert_non_null(strstr(err.msg, "zero-length"));
		memcpy(desc, saved, 16);
		desc = gp(&d, d.mem + R_DESC + 16ULL * (first_head + 2));
		desc[12] &= (uint8_t)~VRING_DESC_F_WRITE;
		assert_int_equal(virtio_blk_ops.load(e->state[0], good, (size_t)len, &err),
				 -EINVAL);
		/* Which check trips first depends on whether that request is a
		 * read (its data buffer is writable) or a write: both reject it. */
		if (!strstr(err.msg, "status byte") &&
		    !strstr(err.msg, "device-readable buffer after a device-writable one"))
			fail_msg("'%s' names neither the status byte nor the order", err.msg);
		desc[12] |= VRING_DESC_F_WRITE;
	}
	/* Nothing of all that stuck: the good state loads and completes. */
	assert_int_equal(virtio_blk_ops.load(e->state[0], good, (size_t)len, &err), 0);
	virtio_blk_ops.resume(e->state[0]);
	assert_true(wait_used(&d, 0, (uint16_t)n));
	assert_used_once(&d, 0, heads, n);
	check_mix(e, &d, 2);
	test_free(good);
	env_free(e);
}

/* A pool that refuses work is a host failure like any other: the error
 * policy applies (werror=stop holds the request; cont retries it). */
static void test_engine_submit_failure_policy(void **st)
{
	struct env *e = env_new();
	struct errbuf err;
	struct drv d;
	uint8_t buf[512];
	int fd;

	io_errors.n = 0;
	make_image(e, 0, 8 * MIB);
	assert_int_equal(add_disk(e, 0, ",werror=stop,aio=threads", &err), 0);
	blk_probe(&d, e, 1, 0x200000);
	drv_init(&d, 16, ALL_FEATURES);
	memset(req_data(&d, 1), 0x3c, 512);
	__atomic_store_n(&fail_submits, 1, __ATOMIC_RELEASE);
	queue_req(&d, 1, VIRTIO_BLK_T_OUT, 77, 512);
	kick(&d, 0, false);
	assert_true(wait_io_errors(e, 1));
	assert_int_equal(io_errors.e[0].action, DISK_ACTION_STOP);
	assert_int_equal(io_errors.e[0].error, ENOMEM);
	assert_int_equal(used_idx(&d, 0), 0);
	virtio_blk_ops.pause(e->state[0]);
	virtio_blk_ops.resume(e->state[0]);
	assert_true(wait_used(&d, 0, 1));
	assert_int_equal(req_status(&d, 1), VIRTIO_BLK_S_OK);
	fd = open(e->path[0], O_RDONLY);
	assert_int_equal(pread(fd, buf, 512, 77 * 512), 512);
	assert_int_equal(buf[0], 0x3c);
	close(fd);
	env_free(e);
}

static void *gate_opener(void *unused)
{
	(void)unused;
	nanosleep(&(struct timespec){0, 100000000}, NULL);
	__atomic_store_n(&gate_open, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* A request that finished while the device was paused is saved with its
 * result and returned with it after a restore: it does not run twice. */
static void test_engine_done_request_not_rerun(void **st)
{
	struct env *e = env_new();
	uint8_t *buf = test_malloc(1 << 16);
	struct errbuf err;
	struct drv d;
	pthread_t t;
	uint8_t sec[512];
	int len, fd;

	make_image(e, 0, 8 * MIB);
	assert_int_equal(add_disk(e, 0, ",aio=threads", &err), 0);
	blk_probe(&d, e, 1, 0x200000);
	drv_init(&d, 16, ALL_FEATURES);
	memset(req_data(&d, 1), 0x55, 512);
	__atomic_store_n(&gate_open, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&gate_entered, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&gate_armed, 1, __ATOMIC_RELEASE);
	queue_req(&d, 1, VIRTIO_BLK_T_OUT, 99, 512);
	kick(&d, 0, false);
	for (int i = 0; i < 10000 && !__atomic_load_n(&gate_entered, __ATOMIC_ACQUIRE); i++)
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	assert_true(__atomic_load_n(&gate_entered, __ATOMIC_ACQUIRE));
	/* The pause waits for the running write, which finishes meanwhile. */
	assert_int_equal(pthread_create(&t, NULL, gate_opener, NULL), 0);
	virtio_blk_ops.pause(e->state[0]);
	pthread_join(t, NULL);
	__atomic_store_n(&gate_armed, 0, __ATOMIC_RELEASE);
	assert_int_equal(used_idx(&d, 0), 0);
	len = virtio_blk_ops.save(e->state[0], buf, 1 << 16);
	assert_int_equal(len, SN_REQS + SN_REQ);
	assert_int_equal(buf[SN_REQS + 4], 1); /* BLOCK_HELD_DONE */
	assert_int_equal(buf[SN_REQS + 5], VIRTIO_BLK_S_OK);
	/* Were it run again, this is what the disk would get. */
	memset(req_data(&d, 1), 0x66, 512);
	readd_disk(e, 0, ",aio=threads");
	virtio_blk_ops.pause(e->state[0]);
	assert_int_equal(virtio_blk_ops.load(e->state[0], buf, (size_t)len, &err), 0);
	virtio_blk_ops.resume(e->state[0]);
	assert_true(wait_used(&d, 0, 1));
	assert_int_equal(req_status(&d, 1), VIRTIO_BLK_S_OK);
	fd = open(e->path[0], O_RDONLY);
	assert_int_equal(pread(fd, sec, 512, 99 * 512), 512);
	close(fd);
	assert_int_equal(sec[0], 0x55);
	test_free(buf);
	env_free(e);
}

/* Reads the page cache serves complete inside io_uring_enter: they are
 * returned at once, not after another trip through epoll. */
static void test_engine_uring_reaps_at_submit(void **st)
{
	const char *aio = aio_opt(st); /* skips where the host refuses io_uring */
	struct env *e;
	struct errbuf err;
	struct drv d;

	e = env_new();
	make_image(e, 0, 8 * MIB); /* just written: in the page cache */
	assert_int_equal(add_disk(e, 0, aio, &err), 0);
	blk_probe(&d, e, 1, 0x200000);
	drv_init(&d, 16, ALL_FEATURES);
	__atomic_store_n(&reaped_at_submit, 0, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(do_req(&d, VIRTIO_BLK_T_IN, 8 * i, 4096), VIRTIO_BLK_S_OK);
	assert_true(__atomic_load_n(&reaped_at_submit, __ATOMIC_RELAXED) >= 1);
	env_free(e);
}

static void test_error_policies(void **st)
{
	struct env *e;
	struct errbuf err;
	struct drv d;
	uint8_t buf[512];
	int fd;

	static const struct {
		const char *opts;
		uint8_t status;
		enum disk_error_action action;
	} w[] = {
	    {"", VIRTIO_BLK_S_IOERR, DISK_ACTION_REPORT}, /* default: report */
	    {",werror=report", VIRTIO_BLK_S_IOERR, DISK_ACTION_REPORT},
	    {",werror=ignore", VIRTIO_BLK_S_OK, DISK_ACTION_IGNORE},
	    {",werror=enospc", VIRTIO_BLK_S_IOERR, DISK_ACTION_REPORT}, /* EFBIG is not ENOSPC */
	};
	for (size_t i = 0; i < ARRAY_SIZE(w); i++) {
		io_errors.n = 0;
		e = env_new();
		make_image(e, 0, 8 * MIB);
		limit_file_size(4 * MIB);
		assert_int_equal(add_disk(e, 0, w[i].opts, &err), 0);
		blk_probe(&d, e, 1, 0x200000);
		drv_init(&d, 16, ALL_FEATURES);
		assert_int_equal(do_req(&d, VIRTIO_BLK_T_OUT, 6 * MIB / 512, 512), w[i].status);
		assert_int_equal(do_req(&d, VIRTIO_BLK_T_OUT, 0, 512), VIRTIO_BLK_S_OK);
		assert_true(wait_io_errors(e, 1));
		assert_int_equal(io_errors.n, 1);
		assert_int_equal(io_errors.e[0].action, w[i].action);
		assert_int_equal(io_errors.e[0].error, EFBIG);
		limit_file_size(0);
		env_free(e);
	}

	/* werror=stop: the request is held, the rest of the disk works; a
	 * resume (what cont does) retries it once the cause is gone. */
	io_errors.n = 0;
	e = env_new();
	make_image(e, 0, 8 * MIB);
	limit_file_size(4 * MIB);
	assert_int_equal(add_disk(e, 0, ",werror=stop,rerror=stop", &err), 0);
	blk_probe(&d, e, 1, 0x200000);
	drv_init(&d, 16, ALL_FEATURES);
	memset(req_data(&d, 1), 0x77, 512);
	queue_req(&d, 1, VIRTIO_BLK_T_OUT, 6 * MIB / 512, 512);
	kick(&d, 0, false);
	assert_true(wait_io_errors(e, 1));
	assert_int_equal(io_errors.e[0].action, DISK_ACTION_STOP);
	assert_int_equal(used_idx(&d, 0), 0);
	assert_int_equal(req_status(&d, 1), 0xee);
	virtio_blk_ops.pause(e->state[0]);
	virtio_blk_ops.resume(e->state[0]); /* still failing: held again */
	assert_true(wait_io_errors(e, 2));
	assert_int_equal(used_idx(&d, 0), 0);
	virtio_blk_ops.pause(e->state[0]);
	limit_file_size(0);
	virtio_blk_ops.resume(e->state[0]);
	assert_true(wait_used(&d, 0, 1));
	assert_int_equal(req_status(&d, 1), VIRTIO_BLK_S_OK);
	fd = open(e->path[0], O_RDONLY);
	assert_int_equal(pread(fd, buf, 512, 6 * MIB), 512);
	assert_int_equal(buf[0], 0x77);
	close(fd);
	d.vq[0].used_seen = 1;

	/* rerror=stop: the image shrinks under a read; extended again, the
	 * retried read completes. */
	io_errors.n = 0;
	assert_int_equal(truncate(e->path[0], 4 * MIB), 0);
	queue_req(&d, 2, VIRTIO_BLK_T_IN, 5 * MIB / 512, 512);
	kick(&d, 0, false);
	assert_true(wait_io_errors(e, 1));
	assert_true(io_errors.e[0].is_read);
	assert_int_equal(io_errors.e[0].action, DISK_ACTION_STOP);
	assert_int_equal(io_errors.e[0].error, EIO);
	assert_int_equal(used_idx(&d, 0), 1);
	assert_int_equal(truncate(e->path[0], 8 * MIB), 0);
	virtio_blk_ops.pause(e->state[0]);
	virtio_blk_ops.resume(e->state[0]);
	assert_true(wait_used(&d, 0, 2));
	assert_int_equal(req_status(&d, 2), VIRTIO_BLK_S_OK);
	assert_int_equal(req_data(&d, 2)[0], 0); /* the regrown part reads as zeroes */

	/* A driver reset while a request is held does not wait for it. */
	io_errors.n = 0;
	limit_file_size(4 * MIB);
	queue_req(&d, 3, VIRTIO_BLK_T_OUT, 6 * MIB / 512, 512);
	kick(&d, 0, false);
	assert_true(wait_io_errors(e, 1));
	set_status(&d, 0);
	assert_int_equal(status(&d), 0);
	limit_file_size(0);
	drv_init(&d, 16, ALL_FEATURES);
	assert_int_equal(do_req(&d, VIRTIO_BLK_T_IN, 1, 512), VIRTIO_BLK_S_OK);
	env_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_and_execute),
	    cmocka_unit_test_prestate(test_io_end_to_end, ",aio=threads"),
	    cmocka_unit_test_prestate(test_io_end_to_end, ",aio=io_uring"),
	    cmocka_unit_test_prestate(test_indirect_requests, ",aio=threads"),
	    cmocka_unit_test_prestate(test_indirect_requests, ",aio=io_uring"),
	    cmocka_unit_test(test_hostile_chain_needs_reset),
	    cmocka_unit_test(test_transport_rules),
	    cmocka_unit_test(test_external_rings),
	    cmocka_unit_test(test_readonly_disk),
	    cmocka_unit_test(test_bad_images),
	    cmocka_unit_test_prestate(test_exit_completes_inflight, ",aio=threads"),
	    cmocka_unit_test_prestate(test_exit_completes_inflight, ",aio=io_uring"),
	    cmocka_unit_test_prestate(test_pause_resume, ",aio=threads"),
	    cmocka_unit_test_prestate(test_pause_resume, ",aio=io_uring"),
	    cmocka_unit_test_prestate(test_snapshot_restore, ",aio=threads"),
	    cmocka_unit_test_prestate(test_snapshot_restore, ",aio=io_uring"),
	    cmocka_unit_test(test_snapshot_rejects_corruption),
	    cmocka_unit_test(test_engine_submit_failure_policy),
	    cmocka_unit_test(test_engine_done_request_not_rerun),
	    cmocka_unit_test_prestate(test_engine_uring_reaps_at_submit, ",aio=io_uring"),
	    cmocka_unit_test(test_error_policies),
	};

	alarm(120); /* a hang fails the run instead of stalling it */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
