/* SPDX-License-Identifier: MIT */
/*
 * aio: kvmini's event loop, modelled on QEMU's util/async.c and aio-posix.c.
 *
 * An AioContext is owned by one thread (the one that calls aio_poll on it).
 * Bottom halves (BHs) may be scheduled from any thread; they run in the
 * owner's aio_poll. fd handlers and timers belong to the owner thread.
 *
 * Errors are negative errno values.
 */
#ifndef KVMINI_AIO_H
#define KVMINI_AIO_H

#include <stdbool.h>
#include <stdint.h>

struct aio_context;
struct aio_bh;
struct aio_timer;

typedef void aio_bh_fn(void *opaque);
typedef void aio_fd_fn(void *opaque);
typedef void aio_timer_fn(void *opaque);

/* Create a context. Any thread; the thread that polls it becomes its owner. */
int aio_context_new(struct aio_context **out);

/*
 * Destroy a context. Owner thread, not inside aio_poll. Reports (stderr) every
 * BH that is still scheduled by name, and returns the number of such leaks.
 */
int aio_context_free(struct aio_context *ctx);

/*
 * Wake the owner's aio_poll. Any thread; async-signal-safe. The current
 * blocking aio_poll returns, or if none is sleeping, the next one does not
 * sleep. It carries no data: pass data with a BH, or keep the flag you
 * check after aio_poll returns in an atomic.
 */
void aio_notify(struct aio_context *ctx);

/*
 * Bottom halves.
 * aio_bh_new: any thread; @name is kept for debugging (use the macro).
 * aio_bh_schedule: any thread, lock-free; scheduling a scheduled BH is a no-op.
 * aio_bh_schedule_idle: like schedule, but the BH does not wake a sleeping poll
 *   and runs at the latest within 10 ms.
 * aio_bh_cancel: any thread; the callback will not run for this schedule
 *   (a callback already running is not waited for).
 * aio_bh_delete: owner thread, also from inside the BH's own callback; no
 *   thread may schedule the BH afterwards (or concurrently).
 * aio_bh_schedule_oneshot: any thread; a BH that deletes itself after running.
 * Callbacks run in the owner's aio_poll, in the order the BHs were scheduled
 * (first schedule since they last ran). A BH scheduled again while its
 * callback runs runs again. aio_bh_new returns NULL without memory;
 * aio_bh_schedule_oneshot returns 0 or -ENOMEM.
 * Idle BHs do not count as progress for aio_poll's return value. An idle
 * schedule from another thread only wakes a poll that would otherwise sleep
 * longer than 10 ms.
 */
struct aio_bh *aio_bh_new_named(struct aio_context *ctx, aio_bh_fn *cb, void *opaque,
				const char *name);
#define aio_bh_new(ctx, cb, opaque) aio_bh_new_named((ctx), (cb), (opaque), #cb)
void aio_bh_schedule(struct aio_bh *bh);
void aio_bh_schedule_idle(struct aio_bh *bh);
void aio_bh_cancel(struct aio_bh *bh);
void aio_bh_delete(struct aio_bh *bh);
int aio_bh_schedule_oneshot_named(struct aio_context *ctx, aio_bh_fn *cb, void *opaque,
				  const char *name);
#define aio_bh_schedule_oneshot(ctx, cb, opaque)                                                   \
	aio_bh_schedule_oneshot_named((ctx), (cb), (opaque), #cb)

/*
 * fd handlers: owner thread (or before the owner starts polling).
 * Passing NULL for both callbacks removes the handler (also from inside a
 * callback). Level-triggered: io_read runs while the fd is readable or hung
 * up / in error, io_write while it is writable or hung up / in error.
 * Remove the handler before closing the fd. Returns 0 or a negative errno
 * (-EPERM for fds epoll cannot watch, such as regular files).
 */
int aio_set_fd_handler(struct aio_context *ctx, int fd, aio_fd_fn *io_read, aio_fd_fn *io_write,
		       void *opaque);

/*
 * Timers on CLOCK_MONOTONIC, nanosecond deadlines; owner thread only.
 * The earliest deadline bounds aio_poll's sleep. Callbacks run in aio_poll.
 */
int64_t aio_clock_ns(void);
struct aio_timer *aio_timer_new(struct aio_context *ctx, aio_timer_fn *cb, void *opaque);
void aio_timer_mod(struct aio_timer *t, int64_t expire_ns); /* absolute aio_clock_ns() time */
void aio_timer_del(struct aio_timer *t);		    /* disarm */
void aio_timer_free(struct aio_timer *t);		    /* disarm and free */
bool aio_timer_pending(struct aio_timer *t);		    /* armed, not yet run */

/*
 * Run ready BHs, fd handlers and expired timers once; with @blocking, sleep
 * until something is ready first. Returns true if any callback ran (progress).
 * Owner thread; may be called recursively from a callback (nested poll).
 */
bool aio_poll(struct aio_context *ctx, bool blocking);

/*
 * Thread pool: blocking work runs on worker threads; its completion callback
 * runs as a BH in the context that submitted it.
 * thread_pool_submit: owner thread of @ctx. thread_pool_cancel: owner thread;
 *   returns true if the work had not started (it will never run, and the
 *   completion runs with ret = -ECANCELED), false if it already started
 *   (the completion will run normally).
 * thread_pool_new: any thread; -EINVAL if max_threads < 1, or -ENOMEM.
 * Workers start lazily (when work waits and no worker is idle) up to
 * max_threads, and exit after being idle for 10 s (thread_pool_set_idle_ns).
 * thread_pool_submit returns NULL if the request cannot be queued (no
 * memory, no worker thread could be started, pool being freed). The
 * request is owned by the pool and freed after @done returns; cancel only
 * before that. @done runs in a BH of @ctx, in completion order.
 * thread_pool_free: owner; cancels queued work, waits for running work, and
 *   runs every outstanding completion before returning; not from a
 *   completion callback.
 */
struct thread_pool;
typedef int thread_pool_work_fn(void *arg);
typedef void thread_pool_done_fn(void *opaque, int ret);
struct thread_pool_req;
int thread_pool_new(struct aio_context *ctx, int max_threads, struct thread_pool **out);
void thread_pool_free(struct thread_pool *pool); /* owner; waits for running work */
struct thread_pool_req *thread_pool_submit(struct thread_pool *pool, thread_pool_work_fn *fn,
					   void *arg, thread_pool_done_fn *done, void *opaque);
bool thread_pool_cancel(struct thread_pool_req *req);
void thread_pool_set_idle_ns(struct thread_pool *pool, int64_t idle_ns); /* owner */
int thread_pool_nr_threads(struct thread_pool *pool); /* any thread; a snapshot */

/*
 * Iothreads: a thread that polls its own context until iothread_destroy,
 * which stops it through an eventfd (no pthread_cancel) and joins it.
 * iothread_new: any thread; @name (15 chars shown) names the thread.
 * iothread_destroy: any thread but the iothread; then frees the context,
 *   so BHs, fd handlers and timers put there must be gone first.
 * Iothreads and pool workers run with all signals blocked.
 */
struct iothread;
int iothread_new(const char *name, struct iothread **out);
struct aio_context *iothread_get_aio_context(struct iothread *it);
void iothread_destroy(struct iothread *it);

#endif
