// SPDX-License-Identifier: MIT
/*
 * The request engine: one request lifecycle for every in-process disk
 * device (see engine.h for the contract and docs/devices.md for the why of
 * the io_uring / thread pool split: io_uring reads cost 3-5x less host CPU
 * than the pool's two thread hand-offs, buffered writes gain nothing).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "devices/block/engine.h"
#include "vmm/iov.h"

void block_list_add(struct block_list *l, struct block_req *r)
{
	r->next = NULL;
	r->prev = l->tail;
	if (l->tail)
		l->tail->next = r;
	else
		l->head = r;
	l->tail = r;
	l->n++;
}

void block_list_del(struct block_list *l, struct block_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		l->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		l->tail = r->prev;
	r->prev = r->next = NULL;
	l->n--;
}

/* ---- completion ---- */

static void block_schedule_notify(struct block_engine *e, unsigned q)
{
	e->notify_queues |= 1u << q;
	e->notify_scheduled = true;
	aio_bh_schedule(e->notify_bh);
}

static void block_notify_bh(void *opaque)
{
	struct block_engine *e = opaque;
	unsigned m = e->notify_queues;

	e->notify_scheduled = false;
	e->notify_queues = 0;
	for (unsigned q = 0; q < e->nqueues; q++)
		if (m & (1u << q))
			e->tops->notify(e->t, q);
}

/* Write @r's result, return the chain, free @r. */
static void block_req_return(struct block_req *r)
{
	struct block_engine *e = r->eng;
	struct vq_elem *elem = r->elem;
	unsigned q = r->queue;
	/* The element is still ours (a reset waits for it), so the result
	 * may be written even if the device broke meanwhile. */
	uint32_t len = e->ops->put_result(r);

	e->tops->push(e->t, q, elem, len); /* frees elem */
	e->ops->free(r);
	block_schedule_notify(e, q);
}

/*
 * Keep @r, with no host work, in @st until resume (or a reset or exit drops
 * it). False if the device may not hold it (resetting, exiting or broken):
 * the caller completes it, which then only retires it. Takes the transport's lock.
 */
static bool block_hold(struct block_req *r, enum block_state st)
{
	struct block_engine *e = r->eng;
	bool ok;

	pthread_mutex_lock(e->lock);
	ok = e->tops->hold_ok(e->t);
	if (ok) {
		r->state = st;
		block_list_add(&e->held, r);
	}
	pthread_mutex_unlock(e->lock);
	return ok;
}

void block_req_complete(struct block_req *r)
{
	if (r->eng->paused && block_hold(r, BLOCK_HELD_DONE))
		return;
	block_req_return(r);
}

/*
 * @r's host work is over with r->error (0 or an errno). Applies the error
 * policy of its drive, then hands it to the device (ops->done) unless the
 * policy holds it.
 */
static void block_req_finished(struct block_req *r)
{
	struct block_engine *e = r->eng;

	block_list_del(&e->submitted, r);
	if (r->error && !r->aborted && r->drive) {
		const struct block_drive *d = r->drive;
		enum disk_error_action a =
		    disk_error_action(r->is_read ? d->rerror : d->werror, r->error);

		disk_report(&e->reports, d->block, r->is_read, a, r->error);
		if (a == DISK_ACTION_STOP && block_hold(r, BLOCK_HELD_FAILED))
			return;
		if (a == DISK_ACTION_IGNORE) {
			/* As QEMU: the guest is told it worked. */
			r->error = 0;
			r->ignored = true;
		}
	}
	e->ops->done(r);
}

/* ---- the thread pool ---- */

static int block_work(void *arg)
{
	struct block_req *r = arg;

	/* delay=: the request stays in flight this long, here in the worker,
	 * so a pause waits for it (bounded by DISK_DELAY_MAX) and a snapshot
	 * catches it. */
	if (r->drive && r->drive->delay_ms) {
		struct timespec ts = {r->drive->delay_ms / 1000,
				      (long)(r->drive->delay_ms % 1000) * 1000000L};

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	r->error = 0;
	r->eng->ops->work(r);
	return 0;
}

static void block_pool_done(void *opaque, int ret)
{
	struct block_req *r = opaque;
	struct block_engine *e = r->eng;

	r->preq = NULL;
	if (ret != -ECANCELED) {
		block_req_finished(r);
		return;
	}
	/* Cancelled before a worker took it: it never ran. */
	block_list_del(&e->submitted, r);
	if (!r->aborted && e->paused && block_hold(r, BLOCK_HELD_NEW))
		return;
	r->cancelled = true;
	e->ops->done(r);
}

/* ---- io_uring reads ---- */

/* Queue what is left of a read; false if the ring is full. */
static bool block_uring_queue(struct block_req *r)
{
	return uring_prep_rw(&r->eng->uring, false, r->drive->fd, r->iov + r->iov_pos,
			     r->niov - r->iov_pos, r->off, (uint64_t)(uintptr_t)r);
}

/* One completion. Short reads go on where they stopped. */
static void block_uring_done(void *opaque, uint64_t user_data, int32_t res)
{
	struct block_req *r = (struct block_req *)(uintptr_t)user_data;
	uint64_t got = res > 0 ? (uint64_t)res : 0;

	(void)opaque;
	if (res < 0 || (res == 0 && r->left)) {
		r->error = res < 0 ? -res : EIO; /* EIO: the file shrank */
		block_req_finished(r);
		return;
	}
	if (got < r->left) {
		r->off += got;
		r->left -= got;
		r->iov_pos = iov_skip(r->iov, r->iov_pos, got);
		if (!block_uring_queue(r)) {
			r->error = EIO;
			block_req_finished(r);
		}
		return;
	}
	block_req_finished(r);
}

void block_engine_submit(struct block_engine *e)
{
	int ret;

	if (!e->use_uring)
		return;
	ret = uring_submit(&e->uring);
	/* What the kernel did not take stays queued for the next submit. */
	if (ret < 0 && ret != -EAGAIN && ret != -EBUSY && ret != -EINTR)
		fprintf(stderr, "kvmini: %s: io_uring_enter: %s\n", e->name, strerror(-ret));
	/* Reads the page cache served inside io_uring_enter are done already:
	 * return them now rather than after another trip through epoll. */
	if (uring_has_cqe(&e->uring))
		uring_reap(&e->uring, block_uring_done, e);
}

static void block_uring_ready(void *opaque)
{
	struct block_engine *e = opaque;

	uring_reap(&e->uring, block_uring_done, e);
	block_engine_submit(e); /* continuations of short reads */
}

/* ---- starting ---- */

void block_req_start(struct block_req *r)
{
	struct block_engine *e = r->eng;

	r->state = BLOCK_SUBMITTED;
	r->error = 0;
	r->uring = r->cancelled = r->ignored = false;
	block_list_add(&e->submitted, r);
	/* A delayed drive's reads go to the pool, which does the waiting. */
	if (e->use_uring && r->is_read && r->drive && !r->drive->delay_ms) {
		r->uring = true;
		r->left = r->len;
		r->iov_pos = 0;
		if (!r->left) {
			block_req_finished(r);
			return;
		}
		if (block_uring_queue(r))
			return;
		/* Ring full (a ring has as many entries as a queue, so only
		 * with several queues): the pool does it instead. */
		r->uring = false;
	}
	r->preq = thread_pool_submit(e->pool, block_work, r, block_pool_done, r);
	if (!r->preq) {
		/* A host failure like any other: the policy applies. */
		r->error = ENOMEM;
		block_req_finished(r);
	}
}

void block_req_abort(struct block_req *r)
{
	r->aborted = true;
	if (r->preq)
		thread_pool_cancel(r->preq); /* completion: -ECANCELED if not started */
}

/* ---- pause, resume, reset ---- */

struct block_quiesce_arg {
	struct block_engine *e;
	bool cancel;
};

/*
 * iothread: take no new requests, and wait (polling this context) until no
 * host I/O is left; with @cancel, pool work not started is not started.
 * What finishes meanwhile is held, not returned, and no interrupt is left
 * to send: from here on the device touches neither guest memory nor
 * interrupts.
 */
static void block_quiesce_fn(void *opaque)
{
	struct block_quiesce_arg *a = opaque;
	struct block_engine *e = a->e;

	e->tops->pause(e->t);
	e->paused = true;
	if (a->cancel)
		for (struct block_req *r = e->submitted.head; r; r = r->next)
			if (r->preq)
				thread_pool_cancel(r->preq);
	block_engine_submit(e); /* nothing may stay queued unsubmitted */
	while (e->submitted.n || e->notify_scheduled)
		aio_poll(e->ctx, true);
}

static void block_quiesce(struct block_engine *e, bool cancel)
{
	struct block_quiesce_arg a = {e, cancel};

	if (e->iothread)
		aio_call_sync(e->ctx, NULL, block_quiesce_fn, &a);
}

void block_engine_pause(struct block_engine *e)
{
	block_quiesce(e, true);
}

/* iothread: return or restart every held request in pop order, then take
 * new ones. */
static void block_resume_fn(void *opaque)
{
	struct block_engine *e = opaque;
	struct block_list l;

	e->paused = false;
	pthread_mutex_lock(e->lock);
	l = e->held;
	e->held = (struct block_list){0};
	pthread_mutex_unlock(e->lock);
	while (l.head) {
		struct block_req *r = l.head;
		const char *why = "out of host memory";

		block_list_del(&l, r);
		if (r->state == BLOCK_HELD_DONE) {
			block_req_return(r);
			continue;
		}
		r->aborted = false;
		if (!e->ops->restart(r, &why)) {
			/* Cannot happen for a chain that parsed before (what it
			 * depends on only changes by a reset, which drops held
			 * requests); safe anyway. */
			e->tops->broken(e->t, r->queue, why);
			e->tops->push(e->t, r->queue, r->elem, 0); /* discarded: broken */
			e->ops->free(r);
		}
	}
	block_engine_submit(e);
	e->tops->resume(e->t);
}

void block_engine_resume(struct block_engine *e)
{
	aio_call_sync(e->ctx, NULL, block_resume_fn, e);
}

void block_device_pause(void *state)
{
	block_engine_pause(state);
}

void block_device_resume(void *state)
{
	block_engine_resume(state);
}

void block_engine_drop_held(struct block_engine *e)
{
	struct block_req *r;

	while ((r = e->held.head)) {
		block_list_del(&e->held, r);
		e->tops->discard(e->t, r->elem);
		e->ops->free(r);
	}
}

/* ---- realize, exit ---- */

static void block_ctx_setup(void *opaque)
{
	struct block_engine *e = opaque;

	e->notify_bh = aio_bh_new(e->ctx, block_notify_bh, e);
	if (e->use_uring &&
	    aio_set_fd_handler(e->ctx, e->uring.efd, block_uring_ready, NULL, e) < 0)
		e->use_uring = false;
}

static void block_ctx_teardown(void *opaque)
{
	struct block_engine *e = opaque;

	/* Owner thread: the pool's and the ring's completions run here. */
	if (e->uring.efd >= 0)
		aio_set_fd_handler(e->ctx, e->uring.efd, NULL, NULL, NULL);
	if (e->pool)
		thread_pool_free(e->pool);
	e->pool = NULL;
	if (e->notify_bh)
		aio_bh_delete(e->notify_bh);
	e->notify_bh = NULL;
}

int block_engine_init(struct block_engine *e, const struct block_engine_params *p,
		      struct errbuf *err)
{
	int ret;

	memset(e, 0, sizeof(*e));
	e->uring.fd = e->uring.efd = -1;
	snprintf(e->name, sizeof(e->name), "%s", p->name);
	e->ops = p->ops;
	e->nqueues = p->nqueues;
	e->env = *p->env;
	if (disk_reports_init(&e->reports, p->env) < 0)
		return err_set(err, ENOMEM, "out of memory");
	if (p->aio != DISK_AIO_THREADS) {
		ret = uring_init(&e->uring, p->uring_entries);
		if (ret == 0)
			e->use_uring = true;
		else if (p->aio == DISK_AIO_IO_URING)
			return err_set(err, -ret,
				       "%s: aio=io_uring: this host refuses io_uring: %s",
				       p->what ? p->what : e->name, strerror(-ret));
	}
	ret = iothread_new(e->name, &e->iothread);
	if (ret < 0)
		return err_set(err, -ret, "%s: cannot start its iothread: %s", e->name,
			       strerror(-ret));
	e->ctx = iothread_get_aio_context(e->iothread);
	ret = thread_pool_new(e->ctx, p->pool_threads, &e->pool);
	if (ret == 0)
		ret = aio_call_sync(e->ctx, NULL, block_ctx_setup, e);
	if (ret < 0 || !e->notify_bh)
		return err_set(err, ENOMEM, "%s: out of memory", e->name);
	return 0;
}

void block_engine_attach(struct block_engine *e, const struct block_transport_ops *tops, void *t,
			 pthread_mutex_t *lock)
{
	e->tops = tops;
	e->t = t;
	e->lock = lock;
}

int block_drive_register(struct block_engine *e, struct vm_block *b)
{
	return e->env.drive_add(e->env.opaque, b);
}

void block_drive_unregister(struct block_engine *e, struct vm_block *b)
{
	e->env.drive_remove(e->env.opaque, b);
}

void block_req_init(struct block_req *r, struct block_engine *e, struct vq_elem *elem,
		    uint16_t queue, uint16_t head)
{
	r->eng = e;
	r->elem = elem;
	r->queue = queue;
	r->head = head;
}

/* Free the pool and BH on the iothread, then stop it. Main thread. */
static void block_stop_iothread(struct block_engine *e)
{
	if (!e->iothread)
		return;
	aio_call_sync(e->ctx, NULL, block_ctx_teardown, e);
	iothread_destroy(e->iothread);
	e->iothread = NULL;
}

void block_engine_stop(struct block_engine *e)
{
	/*
	 * Every request the host already works on completes (nothing the
	 * device started writing is cut short); then what is held (the VM was
	 * paused, or a request waits under werror=stop) is dropped: the guest
	 * is going away and never sees it return.
	 */
	block_quiesce(e, false);
	pthread_mutex_lock(e->lock);
	block_engine_drop_held(e);
	pthread_mutex_unlock(e->lock);
	e->tops->stop(e->t);
	/* No completion or notify BH can touch the device after this. */
	block_stop_iothread(e);
}

void block_engine_free(struct block_engine *e)
{
	block_stop_iothread(e);
	disk_reports_exit(&e->reports);
	uring_exit(&e->uring); /* idle: every read was reaped before the stop */
}

/* ---- snapshots ---- */

bool block_engine_idle(struct block_engine *e)
{
	/* Paused (vm_pause): the iothread has no host I/O and is idle. */
	return e->paused && !e->submitted.n;
}

unsigned block_engine_nheld(struct block_engine *e)
{
	unsigned n;

	pthread_mutex_lock(e->lock);
	n = e->held.n;
	pthread_mutex_unlock(e->lock);
	return n;
}

void block_engine_save_held(struct block_engine *e, void *buf, size_t rec_size,
			    void (*fill)(const struct block_req *r, void *rec))
{
	uint8_t *b = buf;

	pthread_mutex_lock(e->lock);
	for (const struct block_req *r = e->held.head; r; r = r->next, b += rec_size) {
		struct block_req_snap_hdr h = {
		    .queue = r->queue, .head = r->head, .state = (uint8_t)r->state};

		memset(b, 0, rec_size);
		fill(r, b);
		/* The prefix only: the padding byte is the device's. */
		memcpy(b, &h, offsetof(struct block_req_snap_hdr, state) + 1);
	}
	pthread_mutex_unlock(e->lock);
}

int block_req_snap_check(const struct block_req_snap_hdr *h, unsigned nqueues, char *why,
			 size_t why_len)
{
	if (h->queue >= nqueues)
		return snprintf(why, why_len, "queue %u", h->queue), -EINVAL;
	if (h->state != BLOCK_HELD_DONE && h->state != BLOCK_HELD_NEW &&
	    h->state != BLOCK_HELD_FAILED)
		return snprintf(why, why_len, "state %u", h->state), -EINVAL;
	return 0;
}

void block_engine_set_held(struct block_engine *e, struct block_list *l)
{
	pthread_mutex_lock(e->lock);
	e->held = *l;
	pthread_mutex_unlock(e->lock);
	*l = (struct block_list){0};
}
