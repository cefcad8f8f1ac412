/* SPDX-License-Identifier: MIT */
/*
 * aio: kvmini's event loop, modelled on QEMU's util/async.c and aio-posix.c.
 *
 * An AioContext is owned by one thread (the one that calls aio_poll on it);
 * another thread can hold it for a while with aio_context_acquire.
 * Bottom halves (BHs) may be scheduled from any thread; they run in the
 * owner's aio_poll. fd handlers and timers belong to the owner thread.
 * Coroutines (below) belong to a context and run only in its holder.
 *
 * Errors are negative errno values.
 */
#ifndef KVMINI_AIO_H
#define KVMINI_AIO_H

#include <stdbool.h>
#include <stddef.h>
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
 * BH and coroutine that is still scheduled by name, and returns the number
 * of such leaks (a leaked coroutine that never ran may then be deleted).
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
 * Run @fn(@arg) on @ctx's owner thread (as a one-shot BH) and wait until it
 * returned; run it directly when @ctx is @self_ctx, the caller's own
 * context. Any thread but @ctx's owner. 0, or -ENOMEM (@fn did not run).
 */
int aio_call_sync(struct aio_context *ctx, struct aio_context *self_ctx, void (*fn)(void *),
		  void *arg);

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

/*
 * The threads aio starts call a hook first thing, named and before any
 * work: kvmini's top level puts each into its sandbox (vmm/sandbox.h).
 * Main thread, before the first iothread_new; NULL removes it. The hook
 * runs on the new thread with the creator's seccomp filter in force.
 */
enum aio_thread_kind { AIO_THREAD_IOTHREAD, AIO_THREAD_WORKER };
typedef void aio_thread_hook_fn(enum aio_thread_kind kind);
void aio_set_thread_hook(aio_thread_hook_fn *hook);

/*
 * Holding a context. At any moment at most one thread holds a context: the
 * one inside aio_poll on it, or one that called aio_context_acquire. Only
 * the holder runs the context's callbacks and coroutines; the "owner
 * thread" rules above mean "the thread that holds it" (or any thread while
 * nobody polls it yet).
 * aio_context_acquire: any thread; lets a thread that does not normally
 *   poll @ctx (for example the main thread and an iothread's context) hold
 *   it: the holder's blocking aio_poll is woken, and its next aio_poll
 *   waits until aio_context_release. Recursive. While a thread holds @ctx
 *   it may call aio_poll on it (also blocking), and aio_co_enter/wake
 *   enter @ctx's coroutines directly. Never across a coroutine_yield,
 *   never two contexts in opposite orders on two threads (deadlock), and
 *   not around iothread_destroy of the iothread that polls @ctx.
 * aio_context_release: the acquiring thread.
 * aio_context_held: any thread; true if the calling thread holds @ctx.
 * aio_get_current_context: any thread; the context the calling thread is
 *   in (the innermost aio_poll or acquire), or NULL. Inside a coroutine it
 *   is the coroutine's own context.
 */
void aio_context_acquire(struct aio_context *ctx);
void aio_context_release(struct aio_context *ctx);
bool aio_context_held(struct aio_context *ctx);
struct aio_context *aio_get_current_context(void);

/*
 * Coroutines: stackful, x86_64, our own stack switch (musl has no
 * makecontext). A coroutine runs on its own mmap'd stack (COROUTINE_STACK_SIZE
 * plus a PROT_NONE guard page below it) until it calls coroutine_yield or
 * returns; then whoever entered it continues. A coroutine that returns is
 * recycled into a pool (per thread, then process-wide), so creating one is
 * usually a few dozen nanoseconds.
 *
 * A coroutine belongs to the AioContext it was last entered in, and it
 * only ever runs in the thread that holds that context at the time. It may
 * resume in a different thread than the one it yielded in (an iothread,
 * then the main thread holding the iothread's context): do not keep the
 * address of a thread-local variable (errno included) or the result of
 * pthread_self() (declared const, so the compiler may reuse it) across a
 * yield. BH callbacks and fd handlers must not yield, and a coroutine must
 * not yield while it holds a context with aio_context_acquire.
 *
 * coroutine_new: any thread. Returns 0, -EINVAL without @fn, or -ENOMEM
 *   (with a one-line message on stderr naming the coroutine) if no stack
 *   can be had. @fn(@opaque)
 *   runs at the first enter; the coroutine is freed when @fn returns.
 * coroutine_new_sized: the same with a stack of @stack_size bytes (rounded
 *   up to pages, at least 16 KiB); only default-size stacks are pooled.
 * coroutine_delete: for a coroutine that was never entered (error paths).
 * coroutine_enter: enter @co now in this thread, in the current context
 *   (nested when called from a coroutine: the caller continues when @co
 *   yields or returns). A coroutine that belongs to another context is not
 *   moved: it is reported and scheduled in its own context instead.
 * coroutine_yield: from a coroutine only; returns when it is entered again.
 * coroutine_self: the running coroutine, or NULL outside coroutines.
 * coroutine_get_context: the context @co last ran in (NULL before its
 *   first enter or when entered outside any context); any thread.
 * coroutine_name: the entry function's name given to coroutine_new.
 * coroutine_pool_drain: any thread; frees this thread's pooled coroutines
 *   and the process-wide pool (tests, memory pressure).
 * coroutine_error_count: any thread; how many misuse reports (double
 *   schedule, enter of a scheduled or running coroutine, ...) were printed.
 */
#define COROUTINE_STACK_SIZE (256 * 1024)
struct coroutine;
typedef void coroutine_fn(void *opaque);
int coroutine_new_named(coroutine_fn *fn, void *opaque, const char *name, struct coroutine **out);
#define coroutine_new(fn, opaque, out) coroutine_new_named((fn), (opaque), #fn, (out))
int coroutine_new_sized_named(coroutine_fn *fn, void *opaque, size_t stack_size, const char *name,
			      struct coroutine **out);
#define coroutine_new_sized(fn, opaque, size, out)                                                 \
	coroutine_new_sized_named((fn), (opaque), (size), #fn, (out))
void coroutine_delete(struct coroutine *co);
void coroutine_enter_from(struct coroutine *co, const char *caller);
#define coroutine_enter(co) coroutine_enter_from((co), __func__)
void coroutine_yield(void);
struct coroutine *coroutine_self(void);
struct aio_context *coroutine_get_context(struct coroutine *co);
const char *coroutine_name(struct coroutine *co);
void coroutine_pool_drain(void);
unsigned long coroutine_error_count(void);

/*
 * Coroutines and contexts. The macros pass the caller's function name,
 * which a misuse report prints (e.g. who scheduled a coroutine first).
 * aio_co_schedule: any thread, lock-free. @co is entered in @ctx by @ctx's
 *   holder, from one BH per context, in the order coroutines were
 *   scheduled. @co must have yielded, or be the caller itself
 *   (aio_co_schedule(ctx, coroutine_self()) then coroutine_yield(): the
 *   schedule takes effect once it has yielded, so this also moves a
 *   coroutine to another context safely). Scheduling a coroutine that is
 *   already scheduled (or queued by aio_co_enter) is a bug: it is reported
 *   with both callers' names, and the second schedule is dropped, so the
 *   coroutine still runs once (docs/aio.md says why we do not abort).
 * aio_co_enter: any thread. If the caller holds @ctx: enter @co now, or if
 *   the caller is itself a coroutine of @ctx, right after the caller yields
 *   or returns. Otherwise schedule @co in @ctx.
 * aio_co_wake: any thread; aio_co_enter in the context @co last ran in.
 */
void aio_co_schedule_from(struct aio_context *ctx, struct coroutine *co, const char *caller);
#define aio_co_schedule(ctx, co) aio_co_schedule_from((ctx), (co), __func__)
void aio_co_enter_from(struct aio_context *ctx, struct coroutine *co, const char *caller);
#define aio_co_enter(ctx, co) aio_co_enter_from((ctx), (co), __func__)
void aio_co_wake_from(struct coroutine *co, const char *caller);
#define aio_co_wake(co) aio_co_wake_from((co), __func__)

#endif
