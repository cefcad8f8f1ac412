/* SPDX-License-Identifier: MIT */
/*
 * aio internals shared by the aio/ sources: the AioContext layout and the hooks
 * between async.c (BHs, notify), aio_posix.c (epoll, aio_poll) and timer.c.
 * Not for use outside aio/.
 *
 * Memory-ordering conventions. Every access to a field that two threads
 * touch is a C11 atomic. The operations that order the BH / notify protocol
 * are seq_cst atomics and are labelled [E1] [E2] [N1] [N2] [W1] [A1] [P1]
 * [D1] [L1] [I1]; each comment names the label it pairs with. docs/aio.md
 * explains the protocol as a whole.
 */
#ifndef KVMINI_AIO_INT_H
#define KVMINI_AIO_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "aio/aio.h"

/* An idle BH runs at the latest this long after it is scheduled. */
#define AIO_IDLE_BH_NS 10000000LL

/* BH flags (struct aio_bh.flags). */
enum {
	BH_PENDING = 1u << 0,	/* on ctx->bh_list or in a slice: the list owns bh->next */
	BH_SCHEDULED = 1u << 1, /* run the callback when dequeued */
	BH_DELETED = 1u << 2,	/* free when dequeued, without running */
	BH_ONESHOT = 1u << 3,	/* free after running */
	BH_IDLE = 1u << 4,	/* scheduled with aio_bh_schedule_idle */
};

struct aio_bh {
	struct aio_context *ctx; /* immutable */
	aio_bh_fn *cb;		 /* immutable */
	void *opaque;		 /* immutable */
	const char *name;	 /* immutable */
	/*
	 * Written only by the thread that set BH_PENDING (before its push
	 * [E2]) and then by the owner while BH_PENDING stays set; the owner
	 * reads it before clearing BH_PENDING [D1]. No other thread touches it.
	 */
	struct aio_bh *next;
	atomic_uint flags; /* any thread, atomic RMW only */
	/* ctx->bh_all_lock; persistent (not one-shot) BHs only, for the leak report */
	struct aio_bh *all_prev, *all_next;
};

/* A batch of BHs taken from ctx->bh_list by one aio_bh_poll (owner only). */
struct aio_bh_slice {
	struct aio_bh *head;
	struct aio_bh_slice *next;
};

struct aio_handler {
	int fd;
	aio_fd_fn *io_read;
	aio_fd_fn *io_write;
	void *opaque;
	uint32_t revents; /* ready events not yet dispatched */
	bool deleted;	  /* removed while aio_poll was running; freed at depth 0 */
	struct aio_handler *next;
};

/*
 * Timers live on a circular doubly linked list with a sentinel: ctx->timers
 * (armed, sorted by deadline) or ctx->expired (due, about to run). A
 * disarmed timer has next == NULL.
 */
struct aio_timer {
	struct aio_context *ctx; /* immutable */
	aio_timer_fn *cb;	 /* immutable */
	void *opaque;		 /* immutable */
	int64_t expire_ns;
	struct aio_timer *prev, *next;
};

struct aio_context {
	/*
	 * Shared with other threads: every field here is atomic. Kept on one
	 * cache line because a scheduling thread touches all three.
	 */
	/* LIFO of pending BHs; any thread pushes [E2], the owner takes it [P1]. */
	_Alignas(64) _Atomic(struct aio_bh *) bh_list;
	atomic_uint notify_me;	/* owner writes [W1]; any thread reads [N2]: owner may be asleep */
	atomic_bool notified;	/* any thread sets [N1]; owner clears [A1] */
	atomic_bool long_sleep; /* owner writes [L1]; idle schedulers read [I1] */

	/* Immutable after aio_context_new. */
	_Alignas(64) int epoll_fd;
	int event_fd; /* the notifier: written by aio_notify, read by the owner */

	/*
	 * Holding (aio_context_acquire, aio_poll). hold_lock is held by the
	 * holder for as long as it holds the context, including while it
	 * sleeps in epoll; an acquirer counts itself in `acquirers` and
	 * kicks the sleeper with aio_notify. An aio_poll that starts while
	 * acquirers wait gives way on hold_cond (see aio_context_hold).
	 */
	pthread_mutex_t hold_lock;
	pthread_cond_t hold_cond;	  /* acquirers dropped to 0; hold_lock */
	atomic_uint acquirers;		  /* any thread RMW; read under hold_lock */
	_Atomic(void *) holder;		  /* holder's thread token, written by the holder */
	unsigned acquire_depth;		  /* holder only: aio_context_acquire nesting */
	bool acquire_locked;		  /* holder only: the outermost acquire took hold_lock */
	struct aio_context *acquire_prev; /* holder only: current context before acquire */

	/*
	 * Scheduled coroutines: a lock-free LIFO like bh_list. Any thread
	 * pushes (release CAS, aio_co_push); co_bh takes the whole list
	 * (acquire exchange) and enters them oldest first.
	 */
	_Alignas(64) _Atomic(struct coroutine *) co_list;
	struct aio_bh *co_bh; /* immutable */
	/* Taken from co_list, not yet entered, oldest first (holder only). */
	struct coroutine *co_run, **co_run_tail;

	/* Every persistent BH, so that aio_context_free can name leaks. */
	pthread_mutex_t bh_all_lock;
	struct aio_bh *bh_all; /* bh_all_lock */

	/* Owner thread only. */
	unsigned depth;		     /* aio_poll nesting */
	struct aio_bh_slice *slices; /* batches being run, oldest first */
	struct aio_bh_slice **slices_tail;
	struct aio_handler *handlers;
	unsigned nr_handlers;	  /* live (not deleted) handlers */
	bool handlers_deleted;	  /* some node awaits freeing at depth 0 */
	struct aio_timer timers;  /* sentinel: armed timers */
	struct aio_timer expired; /* sentinel: due timers being run */
};

/*
 * A coroutine (coroutine.c), with the fields aio_co.c needs. Thread rules:
 * "running thread" is the thread that runs the coroutine or entered it
 * (the two alternate on one thread while it runs).
 */
struct coroutine {
	void *sp;		  /* saved stack pointer while switched out */
	struct coroutine *caller; /* running: whom to switch back to */
	coroutine_fn *fn;	  /* set by coroutine_new; read by the coroutine */
	void *opaque;		  /* ditto */
	const char *name;	  /* ditto; for reports */
	atomic_bool live;	  /* created and not yet recycled (misuse checks) */
	atomic_bool running;	  /* CAS by the enterer; cleared once switched out */
	bool terminated;	  /* set by the coroutine before its last switch */
	bool started;		  /* entered at least once since coroutine_new */
	bool thread_leader;	  /* the per-thread stand-in for the thread's stack */
	/* The context it runs in: written by the enterer, read by wakers. */
	_Atomic(struct aio_context *) ctx;
	/*
	 * Who scheduled it (a function name) while it waits on a co_list or
	 * a wake queue. Set by CAS from NULL (the winner owns sched_next);
	 * cleared (release) by the enter loop after it read sched_next.
	 */
	_Atomic(const char *) scheduled;
	struct coroutine *sched_next; /* on ctx->co_list */
	/* aio_co_schedule(ctx, self): pushed by the enterer after the yield. */
	struct aio_context *resched_ctx;
	/* Coroutines to enter after this one yields (aio_co_enter inside it). */
	struct coroutine *wake_head, **wake_tail;
	struct coroutine *wake_next; /* on a wake queue or an enter loop's queue */

	/* Stack: immutable while allocated. */
	void *map; /* mmap'd region: guard page + stack */
	size_t map_size;
	void *stack_lo;	   /* lowest usable address */
	size_t stack_size; /* usable bytes */
	struct coroutine *pool_next;

	/* Sanitizers (only in -fsanitize=thread / address builds). */
	void *tsan_fiber;	    /* created at the first enter */
	void *tsan_caller;	    /* fiber of the enterer, for the way back */
	const void *asan_caller_lo; /* stack of the enterer, for the way back */
	size_t asan_caller_size;
};

/* coroutine.c. */
/*
 * The enter loop: runs @co, then what it queued, in the calling thread and
 * in @ctx (which the calling thread holds, or NULL). @queued: @co was
 * handed over with `scheduled` set (by the co BH or a wake queue).
 */
void coroutine_enter_loop(struct aio_context *ctx, struct coroutine *co, bool queued,
			  const char *caller);
/* Print a one-line misuse report and count it. Any thread. */
void coroutine_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* aio_co.c. */
/*
 * Weak: coroutines (coroutine.c, aio_co.c) are linked only into programs
 * that use them. kvmini does not: its block requests are callback state
 * machines whose every state a pause and a snapshot can see (docs/aio.md).
 * Without aio_co.c these are NULL and contexts have no coroutine queue.
 */
int aio_co_init(struct aio_context *ctx) __attribute__((weak)); /* from aio_context_new */
int aio_co_cleanup(struct aio_context *ctx)
    __attribute__((weak)); /* from aio_context_free; returns leaks */
void aio_co_push(struct aio_context *ctx, struct coroutine *co); /* any thread */

/* async.c: the current context of this thread (aio_poll, acquire). */
struct aio_context *aio_set_current_context(struct aio_context *ctx); /* returns the old one */
/* Start holding @ctx in aio_poll; returns true if the lock was taken. */
bool aio_context_hold(struct aio_context *ctx);
void aio_context_unhold(struct aio_context *ctx, bool locked);

/* async.c, owner thread only. */
bool aio_bh_poll(struct aio_context *ctx);
int64_t aio_bh_timeout(struct aio_context *ctx, struct aio_bh **head_seen);
void aio_notify_accept(struct aio_context *ctx);

/* aio_posix.c, owner thread (or before the owner starts, for init). */
int aio_posix_init(struct aio_context *ctx);
void aio_posix_cleanup(struct aio_context *ctx);

/* timer.c, owner thread only. */
void aio_timers_init(struct aio_context *ctx);
int64_t aio_timers_timeout(struct aio_context *ctx); /* ns, 0 = due, -1 = none */
bool aio_timers_run(struct aio_context *ctx);
void aio_timers_cleanup(struct aio_context *ctx);

/*
 * Start a helper thread of @kind with every signal blocked (signals are for
 * the threads that ask for them, e.g. vCPU kicks); it names itself @name
 * for debuggers and runs the thread hook (aio_set_thread_hook) before @fn.
 * Any thread. Returns 0 or a negative errno.
 */
int aio_thread_start(pthread_t *tid, void *(*fn)(void *), void *arg, const char *name,
		     enum aio_thread_kind kind);

/*
 * Unit tests (built with -DUNIT_TEST) may install a hook that runs at
 * AIO_PREEMPT_POINT()s placed between the steps of the wakeup protocol, to
 * stretch the windows in which another thread can interleave, as if this
 * thread were preempted there. Set it before starting threads; the hook
 * must be thread-safe. In kvmini proper the points compile to nothing.
 */
#ifdef UNIT_TEST
extern void (*aio_test_preempt_hook)(void);
#define AIO_PREEMPT_POINT()                                                                        \
	do {                                                                                       \
		if (aio_test_preempt_hook) {                                                       \
			aio_test_preempt_hook();                                                   \
		}                                                                                  \
	} while (0)
#else
#define AIO_PREEMPT_POINT()                                                                        \
	do {                                                                                       \
	} while (0)
#endif

/* Shortest of two timeouts in ns, where -1 means none. */
static inline int64_t aio_min_timeout(int64_t a, int64_t b)
{
	if (a < 0) {
		return b;
	}
	if (b < 0) {
		return a;
	}
	return a < b ? a : b;
}

#endif
