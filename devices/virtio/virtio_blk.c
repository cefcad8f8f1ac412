// SPDX-License-Identifier: MIT
/*
 * virtio-blk over a raw image: `--disk path=FILE[,readonly=on][,serial=STR]
 * [,aio=auto|threads|io_uring][,werror=POLICY][,rerror=POLICY]`.
 *
 * Each disk has its own iothread. Its AioContext receives the queue's
 * doorbell (a KVM ioeventfd) and pops requests. Reads go to an io_uring
 * (one io_uring_enter per batch; page-cache hits complete inside it) and
 * everything else to the AioContext's thread pool, whose workers do the
 * blocking pwritev/fdatasync/fallocate; with aio=threads (or where the
 * host refuses io_uring) reads use the pool too. All I/O goes straight
 * to/from guest RAM. Completions come back on the iothread (ring eventfd or
 * pool BH), which writes the status byte, returns the chain and (after a
 * batch) raises the queue's MSI-X vector. The vCPU thread only pays for the
 * doorbell write, which KVM absorbs. Why this split: docs/devices.md
 * (measured: io_uring reads cost 3-5x less host CPU per request than the
 * pool's two thread hand-offs, while buffered writes gain nothing, as
 * io_uring punts them to its own workers and serialises them per file).
 *
 * Pausing (vm_pause) stops the pops, cancels pool work no worker started,
 * waits for the host I/O in progress and holds every result: the device
 * then touches neither guest RAM nor interrupts, and everything popped and
 * not returned is "held" (blk->held). Resume returns held results and
 * starts the rest; a snapshot saves the held requests' heads, and a restore
 * reads their chains again and starts them at resume. A host I/O error
 * under werror/rerror=stop holds the request too and asks the main thread
 * (a BH) to report it and pause the VM; cont (resume) retries it.
 *
 * Host I/O in progress at exit completes before the file is fdatasync'd
 * and closed; held requests are dropped. See docs/devices.md.
 */
#include <errno.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/virtio/virtio.h"
#include "vmm/vm.h"

#define SECTOR		  DISK_SECTOR
#define BLK_POOL_THREADS  16
#define BLK_URING_ENTRIES VIRTIO_BLK_QUEUE_SIZE
#define BLK_CONFIG_LEN	  offsetof(struct virtio_blk_config, max_secure_erase_sectors)
#define BLK_CLASS_STORAGE 0x010000 /* mass storage, SCSI: what QEMU reports */
#define BLK_REQ_HDR	  sizeof(struct virtio_blk_outhdr)
#define BLK_DZ_SEGMENT	  sizeof(struct virtio_blk_discard_write_zeroes)

#define BLK_SNAP_VERSION 1

/*
 * Where a popped request is. SUBMITTED: host I/O in progress (pool or
 * io_uring), on blk->submitted. The HELD states have no host I/O and are on
 * blk->held (under vdev.lock): DONE finished while the device was paused
 * (its status is returned at resume), NEW never ran (cancelled from the
 * pool's queue at pause, or restored from a snapshot: started at resume),
 * FAILED failed under werror/rerror=stop (retried at resume).
 */
enum blk_state { BLK_SUBMITTED, BLK_HELD_DONE, BLK_HELD_NEW, BLK_HELD_FAILED };

/* A request in flight: the chain, the parsed request, its disk. */
struct blk_inflight {
	struct virtio_blk *blk;
	struct vq_elem *elem;
	struct blk_req *req;
	struct thread_pool_req *preq; /* on the pool, until its completion runs */
	uint64_t off;		      /* io_uring reads: file offset of what is left */
	uint64_t left;		      /* ... and how many bytes */
	unsigned iov_pos;	      /* first iovec of what is left */
	enum blk_state state;
	uint8_t status; /* BLK_HELD_DONE: what to return */
	struct blk_inflight *prev, *next;
};

struct blk_list {
	struct blk_inflight *head, *tail;
	unsigned n;
};

struct virtio_blk {
	struct virtio_dev vdev;
	struct vm *vm;
	char name[32];
	char path[DISK_PATH_MAX];
	struct blk_disk disk;
	enum disk_error_policy werror, rerror;
	struct iothread *iothread;
	struct aio_context *ctx;
	struct thread_pool *pool;
	struct aio_bh *notify_bh; /* one interrupt decision per batch of completions */
	bool use_uring;		  /* reads through @uring (iothread only after realize) */
	struct uring uring;
	struct vm_block block; /* what query-block reports; in vm->blocks while realized */

	/* iothread (or main, while the iothread is idle: realize, load) */
	bool paused;		   /* blk_quiesce ran, blk_resume_fn not yet */
	bool notify_scheduled;	   /* notify_bh is scheduled and has not run */
	struct blk_list submitted; /* BLK_SUBMITTED requests, in start order */
	/* vdev.lock */
	struct blk_list held; /* BLK_HELD_* requests, in pop order (resume keeps it) */

	struct disk_reports reports; /* the iothread adds, a main-context BH sends */
};

/* ---- request parsing and execution (pure / worker side) ---- */

struct blk_req *blk_req_parse(const struct vq_elem *elem, const char **why)
{
	struct virtio_blk_outhdr hdr;
	const struct iovec *last;
	struct blk_req *r;

	if (elem->out_len < BLK_REQ_HDR) {
		*why = "request without a 16-byte header";
		return NULL;
	}
	if (elem->in_len < 1) {
		*why = "request without a status byte";
		return NULL;
	}
	r = calloc(1, sizeof(*r) + (elem->out_num + elem->in_num) * sizeof(r->iov_store[0]));
	if (!r) {
		*why = "out of host memory";
		return NULL;
	}
	iov_to_buf(elem->out, elem->out_num, 0, &hdr, sizeof(hdr));
	r->type = hdr.type;
	r->sector = hdr.sector;
	last = &elem->in[elem->in_num - 1];
	r->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	r->iov = r->iov_store;
	switch (r->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_GET_ID:
		/* Data goes into the writable buffers before the status byte. */
		r->len = elem->in_len - 1;
		r->niov = iov_slice(elem->in, elem->in_num, 0, r->len, r->iov);
		break;
	default:
		/* Data (write payload, discard segments) follows the header. */
		r->len = elem->out_len - BLK_REQ_HDR;
		r->niov = iov_slice(elem->out, elem->out_num, BLK_REQ_HDR, r->len, r->iov);
		break;
	}
	r->written = 1; /* the status byte */
	r->result = VIRTIO_BLK_S_OK;
	return r;
}

/* Is [sector, sector + bytes/512) inside the disk (overflow-safe)? */
static bool blk_in_range(const struct blk_disk *d, uint64_t sector, uint64_t bytes)
{
	uint64_t n = bytes / SECTOR;

	return sector <= d->nsectors && n <= d->nsectors - sector;
}

static uint8_t blk_discard_write_zeroes(const struct blk_disk *d, struct blk_req *r)
{
	struct virtio_blk_discard_write_zeroes seg;
	bool zeroes = r->type == VIRTIO_BLK_T_WRITE_ZEROES;
	uint64_t off, len;

	if (d->readonly)
		return VIRTIO_BLK_S_IOERR;
	/* One segment per request: max_discard_seg = max_write_zeroes_seg = 1. */
	if (r->len != BLK_DZ_SEGMENT ||
	    iov_to_buf(r->iov, r->niov, 0, &seg, sizeof(seg)) != sizeof(seg))
		return VIRTIO_BLK_S_UNSUPP;
	if (seg.flags & ~(zeroes ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0u))
		return VIRTIO_BLK_S_UNSUPP;
	if (seg.num_sectors > VIRTIO_BLK_MAX_DZ ||
	    !blk_in_range(d, seg.sector, (uint64_t)seg.num_sectors * SECTOR))
		return VIRTIO_BLK_S_IOERR;
	off = seg.sector * SECTOR;
	len = (uint64_t)seg.num_sectors * SECTOR;
	if (!len)
		return VIRTIO_BLK_S_OK;
	if (!zeroes) {
		/* Discard is a hint: a file system that cannot punch holes
		 * simply keeps the data. */
		int e = disk_punch(d->fd, off, len);

		if (e < 0 && e != -EOPNOTSUPP) {
			r->error = -e;
			return VIRTIO_BLK_S_IOERR;
		}
		return VIRTIO_BLK_S_OK;
	}
	/* Write zeroes must read back as zeroes. */
	r->error =
	    -disk_write_zeroes(d->fd, off, len, seg.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
	return r->error ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
}

/* Can this read be done at all? (Sector multiple, inside the disk, and
 * written = len + status must fit the used ring's 32-bit length.) */
static bool blk_read_ok(const struct blk_disk *d, const struct blk_req *r)
{
	return !(r->len % SECTOR) && r->len < UINT32_MAX && blk_in_range(d, r->sector, r->len);
}

void blk_req_execute(const struct blk_disk *d, struct blk_req *r)
{
	uint8_t st = VIRTIO_BLK_S_OK;
	size_t n;

	r->error = 0;
	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		if (!blk_read_ok(d, r))
			st = VIRTIO_BLK_S_IOERR;
		else if ((r->error =
			      -disk_rw_full(d->fd, r->iov, r->niov, r->sector * SECTOR, false)))
			st = VIRTIO_BLK_S_IOERR;
		else
			r->written += (uint32_t)r->len;
		break;
	case VIRTIO_BLK_T_OUT:
		if (d->readonly || r->len % SECTOR || !blk_in_range(d, r->sector, r->len))
			st = VIRTIO_BLK_S_IOERR;
		else if ((r->error =
			      -disk_rw_full(d->fd, r->iov, r->niov, r->sector * SECTOR, true)))
			st = VIRTIO_BLK_S_IOERR;
		break;
	case VIRTIO_BLK_T_FLUSH:
		if (!d->readonly && fdatasync(d->fd) < 0) {
			r->error = errno;
			st = VIRTIO_BLK_S_IOERR;
		}
		break;
	case VIRTIO_BLK_T_GET_ID:
		n = iov_from_buf(r->iov, r->niov, 0, d->serial,
				 r->len < sizeof(d->serial) ? r->len : sizeof(d->serial));
		r->written += (uint32_t)n;
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		st = blk_discard_write_zeroes(d, r);
		break;
	default:
		st = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	r->result = st;
}

/* ---- the device (iothread side) ---- */

static void blk_list_add(struct blk_list *l, struct blk_inflight *f)
{
	f->next = NULL;
	f->prev = l->tail;
	if (l->tail)
		l->tail->next = f;
	else
		l->head = f;
	l->tail = f;
	l->n++;
}

static void blk_list_del(struct blk_list *l, struct blk_inflight *f)
{
	if (f->prev)
		f->prev->next = f->next;
	else
		l->head = f->next;
	if (f->next)
		f->next->prev = f->prev;
	else
		l->tail = f->prev;
	f->prev = f->next = NULL;
	l->n--;
}

static void blk_inflight_free(struct blk_inflight *f)
{
	free(f->req);
	free(f);
}

static int blk_work(void *arg)
{
	struct blk_inflight *f = arg;

	blk_req_execute(&f->blk->disk, f->req);
	return 0;
}

static void blk_schedule_notify(struct virtio_blk *blk)
{
	blk->notify_scheduled = true;
	aio_bh_schedule(blk->notify_bh);
}

/* Return @f to the driver with @status and free it. iothread. */
static void blk_complete(struct blk_inflight *f, uint8_t status)
{
	struct virtio_blk *blk = f->blk;

	/* The element is still ours (a reset waits for it), so the status
	 * byte may be written even if the device broke meanwhile. */
	*f->req->status = status;
	virtio_push(&blk->vdev, f->elem->queue, f->elem, f->req->written);
	blk_inflight_free(f);
	blk_schedule_notify(blk);
}

/*
 * Keep @f, with no host I/O, in state @st until resume (or a reset or exit
 * drops it). False if the device may not hold it (resetting, exiting or
 * broken): the caller completes it, which then only retires it. Any
 * thread; takes vdev.lock.
 */
static bool blk_hold(struct blk_inflight *f, enum blk_state st, uint8_t status)
{
	struct virtio_blk *blk = f->blk;
	bool ok;

	pthread_mutex_lock(&blk->vdev.lock);
	ok = virtio_hold_ok(&blk->vdev);
	if (ok) {
		f->state = st;
		f->status = status;
		blk_list_add(&blk->held, f);
	}
	pthread_mutex_unlock(&blk->vdev.lock);
	return ok;
}

/*
 * @f's host work is over: @status as the device would return it, @error the
 * errno of a failed host operation (0: none). Applies werror/rerror, then
 * returns the request, or holds it (stop; or the device is paused). iothread.
 */
static void blk_finish(struct blk_inflight *f, uint8_t status, int error)
{
	struct virtio_blk *blk = f->blk;

	blk_list_del(&blk->submitted, f);
	if (error) {
		bool is_read = f->req->type == VIRTIO_BLK_T_IN;
		enum disk_error_action a =
		    disk_error_action(is_read ? blk->rerror : blk->werror, error);

		disk_report(&blk->reports, &blk->block, is_read, a, error);
		if (a == DISK_ACTION_STOP && blk_hold(f, BLK_HELD_FAILED, 0))
			return;
		if (a == DISK_ACTION_IGNORE) {
			/* As QEMU: the guest is told it worked. */
			status = VIRTIO_BLK_S_OK;
			if (is_read)
				f->req->written = (uint32_t)f->req->len + 1;
		}
	}
	if (blk->paused && blk_hold(f, BLK_HELD_DONE, status))
		return;
	blk_complete(f, status);
}

static void blk_done(void *opaque, int ret)
{
	struct blk_inflight *f = opaque;
	struct virtio_blk *blk = f->blk;

	f->preq = NULL;
	if (ret == -ECANCELED) {
		/* Cancelled by a pause before a worker took it: it never ran. */
		blk_list_del(&blk->submitted, f);
		if (blk->paused && blk_hold(f, BLK_HELD_NEW, 0))
			return;
		blk_complete(f, VIRTIO_BLK_S_IOERR);
		return;
	}
	blk_finish(f, f->req->result, f->req->error);
}

static void blk_notify_bh(void *opaque)
{
	struct virtio_blk *blk = opaque;

	blk->notify_scheduled = false;
	virtio_notify(&blk->vdev, 0);
}

/* Queue what is left of an io_uring read; false if the ring is full. */
static bool blk_uring_queue(struct blk_inflight *f)
{
	struct blk_req *r = f->req;

	return uring_prep_rw(&f->blk->uring, false, f->blk->disk.fd, r->iov + f->iov_pos,
			     r->niov - f->iov_pos, f->off, (uint64_t)(uintptr_t)f);
}

static void blk_uring_submit(struct virtio_blk *blk)
{
	int r;

	if (!blk->use_uring)
		return;
	r = uring_submit(&blk->uring);
	/* Entries the kernel did not take stay queued; the next submit (next
	 * doorbell or completion) retries them. */
	if (r < 0 && r != -EAGAIN && r != -EBUSY && r != -EINTR)
		fprintf(stderr, "kvmini: %s: io_uring_enter: %s\n", blk->name, strerror(-r));
}

/* One io_uring completion (iothread). Short reads continue where they stopped. */
static void blk_uring_done(void *opaque, uint64_t user_data, int32_t res)
{
	struct blk_inflight *f = (struct blk_inflight *)(uintptr_t)user_data;
	struct blk_req *r = f->req;
	uint64_t got = res > 0 ? (uint64_t)res : 0;

	(void)opaque;
	if (res < 0) {
		blk_finish(f, VIRTIO_BLK_S_IOERR, -res);
		return;
	}
	if (res == 0 && f->left) {
		blk_finish(f, VIRTIO_BLK_S_IOERR, EIO); /* the file shrank */
		return;
	}
	if (got < f->left) {
		f->off += got;
		f->left -= got;
		f->iov_pos = iov_skip(r->iov, f->iov_pos, got);
		if (!blk_uring_queue(f))
			blk_finish(f, VIRTIO_BLK_S_IOERR, 0);
		return;
	}
	r->written += (uint32_t)r->len;
	blk_finish(f, VIRTIO_BLK_S_OK, 0);
}

static void blk_uring_ready(void *opaque)
{
	struct virtio_blk *blk = opaque;

	uring_reap(&blk->uring, blk_uring_done, blk);
	blk_uring_submit(blk); /* continuations of short reads */
}

/* Start @f: reads on the ring when there is one, the rest on the pool. */
static void blk_start(struct virtio_blk *blk, struct blk_inflight *f)
{
	struct blk_req *r = f->req;

	f->state = BLK_SUBMITTED;
	blk_list_add(&blk->submitted, f);
	if (blk->use_uring && r->type == VIRTIO_BLK_T_IN) {
		if (!blk_read_ok(&blk->disk, r)) {
			blk_finish(f, VIRTIO_BLK_S_IOERR, 0);
			return;
		}
		f->off = r->sector * SECTOR;
		f->left = r->len;
		f->iov_pos = 0;
		if (!f->left) {
			blk_finish(f, VIRTIO_BLK_S_OK, 0);
			return;
		}
		if (blk_uring_queue(f))
			return;
		/* Ring full (cannot happen with one queue of at most as many
		 * entries; kept safe): the pool does it instead. */
	}
	f->preq = thread_pool_submit(blk->pool, blk_work, f, blk_done, f);
	if (!f->preq)
		blk_finish(f, VIRTIO_BLK_S_IOERR, 0);
}

/* Start a held request again from its chain (the last attempt consumed
 * its iovecs). iothread. */
static void blk_restart(struct virtio_blk *blk, struct blk_inflight *f)
{
	const char *why = "out of host memory";
	struct blk_req *r = blk_req_parse(f->elem, &why);

	if (!r) {
		virtio_error(&blk->vdev, "queue %u: %s", f->elem->queue, why);
		virtio_push(&blk->vdev, f->elem->queue, f->elem, 0); /* discarded: broken */
		blk_inflight_free(f);
		return;
	}
	free(f->req);
	f->req = r;
	blk_start(blk, f);
}

static void blk_queue_notify(struct virtio_dev *vdev, unsigned q)
{
	struct virtio_blk *blk = vdev->opaque;
	struct vq_elem *elem;

	while (virtio_pop(vdev, q, &elem) > 0) {
		struct blk_inflight *f = calloc(1, sizeof(*f));
		const char *why = "out of host memory";

		if (f)
			f->req = blk_req_parse(elem, &why);
		if (!f || !f->req) {
			free(f);
			virtio_error(vdev, "queue %u: %s", q, why);
			virtio_push(vdev, q, elem, 0); /* discarded: the device is broken */
			break;
		}
		f->blk = blk;
		f->elem = elem;
		blk_start(blk, f);
	}
	/* One system call for the whole batch of reads. */
	blk_uring_submit(blk);
}

/* A driver reset: forget what is held (vdev.lock held, vCPU thread). */
static void blk_drop_held(struct virtio_dev *vdev)
{
	struct virtio_blk *blk = vdev->opaque;
	struct blk_inflight *f;

	while ((f = blk->held.head)) {
		blk_list_del(&blk->held, f);
		virtio_discard_locked(vdev, f->elem);
		blk_inflight_free(f);
	}
}

static const struct virtio_dev_ops blk_virtio_ops = {
    .queue_notify = blk_queue_notify,
    .drop_held = blk_drop_held,
};

/* ---- pause, resume, exit ---- */

struct blk_quiesce_arg {
	struct virtio_blk *blk;
	bool cancel;
};

/*
 * iothread: take no new requests, and wait (polling this context) until no
 * host I/O is left; with @cancel, requests still queued on the pool are
 * not started. Everything that finishes meanwhile is held, not returned,
 * and no interrupt is left to send: from here on the device touches
 * neither guest memory nor interrupts.
 */
static void blk_quiesce_fn(void *opaque)
{
	struct blk_quiesce_arg *a = opaque;
	struct virtio_blk *blk = a->blk;

	virtio_pause(&blk->vdev);
	blk->paused = true;
	if (a->cancel)
		for (struct blk_inflight *f = blk->submitted.head; f; f = f->next)
			if (f->preq)
				thread_pool_cancel(f->preq); /* completion: -ECANCELED */
	blk_uring_submit(blk); /* nothing may stay queued unsubmitted */
	while (blk->submitted.n || blk->notify_scheduled)
		aio_poll(blk->ctx, true);
}

static void blk_quiesce(struct virtio_blk *blk, bool cancel)
{
	struct blk_quiesce_arg a = {blk, cancel};

	if (blk->iothread)
		virtio_ctx_call(blk->ctx, NULL, blk_quiesce_fn, &a);
}

/* iothread: return or restart every held request, in pop order, then
 * take new ones. */
static void blk_resume_fn(void *opaque)
{
	struct virtio_blk *blk = opaque;
	struct blk_list l;

	blk->paused = false;
	pthread_mutex_lock(&blk->vdev.lock);
	l = blk->held;
	blk->held = (struct blk_list){0};
	pthread_mutex_unlock(&blk->vdev.lock);
	while (l.head) {
		struct blk_inflight *f = l.head;

		blk_list_del(&l, f);
		if (f->state == BLK_HELD_DONE)
			blk_complete(f, f->status);
		else
			blk_restart(blk, f);
	}
	blk_uring_submit(blk);
	virtio_resume(&blk->vdev);
}

static void virtio_blk_pause(void *state)
{
	blk_quiesce(state, true);
}

static void virtio_blk_resume(void *state)
{
	struct virtio_blk *blk = state;

	virtio_ctx_call(blk->ctx, NULL, blk_resume_fn, blk);
}

static int blk_open(struct virtio_blk *blk, const struct disk_config *dc, struct errbuf *err)
{
	uint64_t size;
	int ret = disk_image_open(dc->path, dc->readonly, &blk->disk.fd, &size, err);

	if (ret < 0)
		return ret;
	blk->disk.nsectors = size / SECTOR;
	blk->disk.readonly = dc->readonly;
	memcpy(blk->disk.serial, dc->serial, strlen(dc->serial));
	return 0;
}

static void blk_ctx_setup(void *opaque)
{
	struct virtio_blk *blk = opaque;

	blk->notify_bh = aio_bh_new(blk->ctx, blk_notify_bh, blk);
	if (blk->use_uring &&
	    aio_set_fd_handler(blk->ctx, blk->uring.efd, blk_uring_ready, NULL, blk) < 0)
		blk->use_uring = false;
}

static void blk_ctx_teardown(void *opaque)
{
	struct virtio_blk *blk = opaque;

	/* Owner thread: the pool's and the ring's completions run here. */
	if (blk->uring.efd >= 0)
		aio_set_fd_handler(blk->ctx, blk->uring.efd, NULL, NULL, NULL);
	if (blk->pool)
		thread_pool_free(blk->pool);
	blk->pool = NULL;
	if (blk->notify_bh)
		aio_bh_delete(blk->notify_bh);
	blk->notify_bh = NULL;
}

static void blk_fill_config(const struct virtio_blk *blk, struct virtio_blk_config *c)
{
	memset(c, 0, sizeof(*c));
	c->capacity = blk->disk.nsectors;
	c->seg_max = VIRTIO_BLK_SEG_MAX;
	c->blk_size = SECTOR;
	c->num_queues = 1;
	c->max_discard_sectors = VIRTIO_BLK_MAX_DZ;
	c->max_discard_seg = 1;
	c->discard_sector_alignment = 1;
	c->max_write_zeroes_sectors = VIRTIO_BLK_MAX_DZ;
	c->max_write_zeroes_seg = 1;
	c->write_zeroes_may_unmap = 1;
}

/* Free the pool and BH on the iothread, then stop it. Main thread. */
static void blk_stop_iothread(struct virtio_blk *blk)
{
	if (!blk->iothread)
		return;
	virtio_ctx_call(blk->ctx, NULL, blk_ctx_teardown, blk);
	iothread_destroy(blk->iothread);
	blk->iothread = NULL;
}

static void blk_free(struct virtio_blk *blk)
{
	blk_stop_iothread(blk);
	disk_reports_exit(&blk->reports);
	uring_exit(&blk->uring); /* idle: every read was reaped before the stop */
	disk_image_close(blk->disk.fd, blk->disk.readonly, blk->name, blk->path);
	free(blk);
}

static int virtio_blk_realize(struct vm *vm, const char *opts, void **state, struct errbuf *err)
{
	struct virtio_blk_config cfg;
	struct virtio_dev_params p;
	struct disk_config *dc;
	struct virtio_blk *blk;
	int index = 0, ret;

	for (int i = 0; i < vm->ndevices; i++)
		index += vm->devices[i].ops == &virtio_blk_ops;
	blk = calloc(1, sizeof(*blk));
	dc = malloc(sizeof(*dc));
	if (!blk || !dc) {
		free(blk);
		free(dc);
		return err_set(err, ENOMEM, "out of memory");
	}
	blk->disk.fd = -1;
	blk->uring.fd = blk->uring.efd = -1;
	blk->vm = vm;
	snprintf(blk->name, sizeof(blk->name), "virtio-blk%d", index);
	ret = disk_config_parse(opts ? opts : "", dc, err);
	if (ret < 0)
		goto fail;
	snprintf(blk->path, sizeof(blk->path), "%s", dc->path);
	blk->werror = dc->werror;
	blk->rerror = dc->rerror;
	if (disk_reports_init(&blk->reports, vm) < 0) {
		ret = err_set(err, ENOMEM, "out of memory");
		goto fail;
	}
	ret = blk_open(blk, dc, err);
	if (ret < 0)
		goto fail;
	if (dc->aio != DISK_AIO_THREADS) {
		ret = uring_init(&blk->uring, BLK_URING_ENTRIES);
		if (ret == 0) {
			blk->use_uring = true;
		} else if (dc->aio == DISK_AIO_IO_URING) {
			err_set(err, -ret,
				"disk '%s': aio=io_uring: this host refuses io_uring: %s", dc->path,
				strerror(-ret));
			goto fail;
		}
	}

	ret = iothread_new(blk->name, &blk->iothread);
	if (ret < 0) {
		err_set(err, -ret, "%s: cannot start its iothread: %s", blk->name, strerror(-ret));
		goto fail;
	}
	blk->ctx = iothread_get_aio_context(blk->iothread);
	ret = thread_pool_new(blk->ctx, BLK_POOL_THREADS, &blk->pool);
	if (ret == 0)
		ret = virtio_ctx_call(blk->ctx, NULL, blk_ctx_setup, blk);
	if (ret < 0 || !blk->notify_bh) {
		ret = err_set(err, ENOMEM, "%s: out of memory", blk->name);
		goto fail;
	}

	blk_fill_config(blk, &cfg);
	p = (struct virtio_dev_params){
	    .name = blk->name,
	    .device_id = VIRTIO_ID_BLOCK,
	    .pci_class = BLK_CLASS_STORAGE,
	    .features = (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
			(1ULL << VIRTIO_BLK_F_FLUSH),
	    .nqueues = 1,
	    .queue_size = VIRTIO_BLK_QUEUE_SIZE,
	    .config = &cfg,
	    .config_len = BLK_CONFIG_LEN,
	    .ctx = blk->ctx,
	    .ops = &blk_virtio_ops,
	    .opaque = blk,
	};
	if (dc->readonly)
		p.features |= 1ULL << VIRTIO_BLK_F_RO;
	else
		p.features |= (1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
	ret = virtio_pci_init(&blk->vdev, vm, &p, err);
	if (ret < 0)
		goto fail;
	snprintf(blk->block.id, sizeof(blk->block.id), "%s", blk->name);
	blk->block.path = blk->path;
	blk->block.readonly = dc->readonly;
	blk->block.io_status = "ok";
	vm->blocks[vm->nblocks++] = &blk->block;
	free(dc);
	*state = blk;
	return 0;
fail:
	free(dc);
	blk_free(blk);
	return ret;
}

static void virtio_blk_exit(void *state)
{
	struct virtio_blk *blk = state;
	struct vm *vm = blk->vm;

	for (int i = 0; i < vm->nblocks; i++) {
		if (vm->blocks[i] != &blk->block)
			continue;
		memmove(&vm->blocks[i], &vm->blocks[i + 1],
			(size_t)(vm->nblocks - i - 1) * sizeof(vm->blocks[0]));
		vm->nblocks--;
		break;
	}

	/*
	 * Every request the host already works on completes (nothing the
	 * device started writing is cut short); then what is held (the VM
	 * was paused, or a request waits under werror=stop) is dropped: the
	 * guest is going away and never sees it return.
	 */
	blk_quiesce(blk, false);
	pthread_mutex_lock(&blk->vdev.lock);
	blk_drop_held(&blk->vdev);
	pthread_mutex_unlock(&blk->vdev.lock);
	virtio_pci_stop(&blk->vdev);
	/* No completion or notify BH can touch the device after this. */
	blk_stop_iothread(blk);
	virtio_pci_exit(&blk->vdev);
	blk_free(blk);
}

/* ---- snapshots ---- */

/*
 * The device's section: this header, then the virtio transport's state
 * (virtio_pci_save: PCI config, MSI-X, status, features, queues with their
 * in-flight heads). The requests themselves are not saved: at restore their
 * chains are read again from guest RAM, checked again and started anew at
 * resume (a request that had finished on the source, but was held while
 * paused, runs a second time on the host: the same data to the same place,
 * and the guest sees it complete once).
 */
struct blk_snap {
	uint32_t version;
	uint32_t nrequests; /* requests held at save = in-flight elements */
	uint64_t nsectors;  /* must match the image now */
	uint8_t readonly;
	uint8_t io_status; /* 0 ok, 1 failed, 2 nospace */
	uint8_t reserved[6];
};

static const char *const blk_io_status[] = {"ok", "failed", "nospace"};

static int virtio_blk_save(void *state, void *buf, size_t len)
{
	struct virtio_blk *blk = state;
	struct blk_snap h = {.version = BLK_SNAP_VERSION};
	int n;

	if (len < sizeof(h))
		return -ENOSPC;
	/* Paused (vm_pause): the iothread has no host I/O and is idle. */
	if (!blk->paused || blk->submitted.n)
		return -EBUSY;
	pthread_mutex_lock(&blk->vdev.lock);
	h.nrequests = blk->held.n;
	pthread_mutex_unlock(&blk->vdev.lock);
	h.nsectors = blk->disk.nsectors;
	h.readonly = blk->disk.readonly;
	for (uint8_t i = 0; i < ARRAY_SIZE(blk_io_status); i++)
		if (!strcmp(blk->block.io_status, blk_io_status[i]))
			h.io_status = i;
	n = virtio_pci_save(&blk->vdev, (uint8_t *)buf + sizeof(h), len - sizeof(h), h.nrequests);
	if (n < 0)
		return n;
	memcpy(buf, &h, sizeof(h));
	return (int)sizeof(h) + n;
}

struct blk_load_ctx {
	struct virtio_blk *blk;
	struct blk_list list;
};

/* Each in-flight chain read back at load: it must be a request. */
static int blk_load_elem(void *opaque, struct vq_elem *elem, struct errbuf *err)
{
	struct blk_load_ctx *c = opaque;
	const char *why = "out of host memory";
	struct blk_inflight *f = calloc(1, sizeof(*f));

	if (f)
		f->req = blk_req_parse(elem, &why);
	if (!f || !f->req) {
		free(f);
		return err_set(err, EINVAL, "%s: in-flight request at head %u: %s", c->blk->name,
			       elem->head, why);
	}
	f->blk = c->blk;
	f->elem = elem;
	f->state = BLK_HELD_NEW;
	blk_list_add(&c->list, f);
	return 0;
}

static int virtio_blk_load(void *state, const void *buf, size_t len, struct errbuf *err)
{
	struct virtio_blk *blk = state;
	struct blk_load_ctx c = {.blk = blk};
	struct blk_snap h;
	int ret;

	if (len < sizeof(h))
		return err_set(err, EINVAL, "%s: state is truncated (%zu bytes)", blk->name, len);
	memcpy(&h, buf, sizeof(h));
	if (h.version != BLK_SNAP_VERSION)
		return err_set(err, EINVAL, "%s: state version %u, kvmini reads %u", blk->name,
			       h.version, BLK_SNAP_VERSION);
	for (size_t i = 0; i < sizeof(h.reserved); i++)
		if (h.reserved[i])
			return err_set(err, EINVAL, "%s: reserved bytes are not zero", blk->name);
	if (h.nsectors != blk->disk.nsectors)
		return err_set(err, EINVAL,
			       "%s: the snapshot's disk has %llu sectors, '%s' has %llu (not the "
			       "same image?)",
			       blk->name, (unsigned long long)h.nsectors, blk->path,
			       (unsigned long long)blk->disk.nsectors);
	if (h.readonly > 1 || h.readonly != blk->disk.readonly)
		return err_set(err, EINVAL,
			       "%s: readonly=%s in the snapshot, %s on the command line", blk->name,
			       h.readonly ? "on" : "off", blk->disk.readonly ? "on" : "off");
	if (h.io_status >= ARRAY_SIZE(blk_io_status))
		return err_set(err, EINVAL, "%s: bad io-status %u", blk->name, h.io_status);
	if (!blk->paused || blk->held.n)
		return err_set(err, EBUSY, "%s: can only load into a fresh, paused device",
			       blk->name);
	ret = virtio_pci_load(&blk->vdev, (const uint8_t *)buf + sizeof(h), len - sizeof(h),
			      h.nrequests, blk_load_elem, &c, err);
	if (ret < 0) {
		while (c.list.head) {
			struct blk_inflight *f = c.list.head;

			blk_list_del(&c.list, f);
			free(f->elem);
			blk_inflight_free(f);
		}
		return ret;
	}
	/* Started (in this order) when the VM is resumed. */
	pthread_mutex_lock(&blk->vdev.lock);
	blk->held = c.list;
	pthread_mutex_unlock(&blk->vdev.lock);
	blk->block.io_status = blk_io_status[h.io_status];
	return 0;
}

const struct device_ops virtio_blk_ops = {
    .name = "virtio-blk",
    .realize = virtio_blk_realize,
    .save = virtio_blk_save,
    .load = virtio_blk_load,
    .pause = virtio_blk_pause,
    .resume = virtio_blk_resume,
    .exit = virtio_blk_exit,
};
