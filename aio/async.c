/* SPDX-License-Identifier: MIT */
/*
 * AioContext lifetime, bottom halves and aio_notify.
 *
 * A BH is scheduled by setting flags in its atomic flags word; the thread
 * that sets BH_PENDING (the first to schedule it since it last ran) pushes
 * it on ctx->bh_list, a lock-free LIFO. The owner takes the whole list at
 * once (so there is no ABA problem: nobody pops single nodes concurrently),
 * reverses it to run BHs in the order they were first scheduled, and runs
 * it as a "slice". Slices queue up on ctx->slices so that a nested aio_poll
 * keeps running the outer poll's BHs in order instead of skipping them.
 *
 * The wakeup protocol (notify_me / notified) is described in docs/aio.md;
 * the labels [X1] name the seq_cst operations that order it, and each
 * comment says which label it pairs with.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aio/aio_int.h"

#ifdef UNIT_TEST
void (*aio_test_preempt_hook)(void);
#endif

int aio_context_new(struct aio_context **out)
{
	struct aio_context *ctx;
	int ret;

	/* _Alignas(64) members: malloc's alignment is not enough. */
	if (posix_memalign((void **)&ctx, 64, sizeof(*ctx))) {
		return -ENOMEM;
	}
	memset(ctx, 0, sizeof(*ctx));
	atomic_init(&ctx->bh_list, NULL);
	atomic_init(&ctx->notify_me, 0);
	atomic_init(&ctx->notified, false);
	atomic_init(&ctx->long_sleep, false);
	ctx->slices_tail = &ctx->slices;
	atomic_init(&ctx->acquirers, 0);
	atomic_init(&ctx->holder, NULL);
	ret = -pthread_mutex_init(&ctx->bh_all_lock, NULL);
	if (ret) {
		goto err_free;
	}
	ret = -pthread_mutex_init(&ctx->hold_lock, NULL);
	if (ret) {
		goto err_mutex;
	}
	ret = -pthread_cond_init(&ctx->hold_cond, NULL);
	if (ret) {
		goto err_hold_lock;
	}
	aio_timers_init(ctx);
	ret = aio_posix_init(ctx);
	if (ret) {
		goto err_hold_cond;
	}
	if (aio_co_init) {
		ret = aio_co_init(ctx);
		if (ret) {
			goto err_posix;
		}
	}
	*out = ctx;
	return 0;

err_posix:
	aio_posix_cleanup(ctx);
err_hold_cond:
	pthread_cond_destroy(&ctx->hold_cond);
err_hold_lock:
	pthread_mutex_destroy(&ctx->hold_lock);
err_mutex:
	pthread_mutex_destroy(&ctx->bh_all_lock);
err_free:
	free(ctx);
	return ret;
}

static void aio_bh_free(struct aio_bh *bh)
{
	struct aio_context *ctx = bh->ctx;

	if (!(atomic_load_explicit(&bh->flags, memory_order_relaxed) & BH_ONESHOT)) {
		pthread_mutex_lock(&ctx->bh_all_lock);
		if (bh->all_prev) {
			bh->all_prev->all_next = bh->all_next;
		} else {
			ctx->bh_all = bh->all_next;
		}
		if (bh->all_next) {
			bh->all_next->all_prev = bh->all_prev;
		}
		pthread_mutex_unlock(&ctx->bh_all_lock);
	}
	free(bh);
}

/*
 * Owner thread, not inside aio_poll. Nothing may schedule BHs on @ctx any
 * more: a concurrent aio_bh_schedule would touch freed memory.
 */
int aio_context_free(struct aio_context *ctx)
{
	struct aio_bh *bh, *next;
	int leaks = 0;

	if (!ctx) {
		return 0;
	}
	/* A slice on the list means some aio_poll frame is still running. */
	if (ctx->depth || ctx->slices || atomic_load(&ctx->holder)) {
		fprintf(stderr, "aio: aio_context_free called inside aio_poll or while held\n");
		abort();
	}
	if (aio_co_cleanup) {
		leaks += aio_co_cleanup(ctx); /* deletes co_bh: freed below */
	}

	/* [P1'] like [P1] in aio_bh_poll: acquire pairs with [E2]. */
	bh = atomic_exchange_explicit(&ctx->bh_list, NULL, memory_order_seq_cst);
	for (; bh; bh = next) {
		unsigned flags = atomic_load_explicit(&bh->flags, memory_order_relaxed);

		next = bh->next;
		if (flags & BH_DELETED) {
			aio_bh_free(bh);
		} else if (flags & BH_ONESHOT) {
			fprintf(stderr,
				"aio: one-shot BH '%s' still scheduled at aio_context_free\n",
				bh->name);
			leaks++;
			aio_bh_free(bh);
		}
		/* Persistent BHs are reported (and freed) from bh_all below. */
	}

	pthread_mutex_lock(&ctx->bh_all_lock);
	for (bh = ctx->bh_all; bh; bh = next) {
		unsigned flags = atomic_load_explicit(&bh->flags, memory_order_relaxed);

		next = bh->all_next;
		if (flags & BH_SCHEDULED) {
			fprintf(stderr, "aio: BH '%s' still scheduled at aio_context_free\n",
				bh->name);
			leaks++;
		} else {
			fprintf(stderr, "aio: BH '%s' never deleted (not scheduled)\n", bh->name);
		}
		free(bh);
	}
	ctx->bh_all = NULL;
	pthread_mutex_unlock(&ctx->bh_all_lock);

	aio_timers_cleanup(ctx);
	aio_posix_cleanup(ctx);
	pthread_cond_destroy(&ctx->hold_cond);
	pthread_mutex_destroy(&ctx->hold_lock);
	pthread_mutex_destroy(&ctx->bh_all_lock);
	free(ctx);
	return leaks;
}

/*
 * The calling thread's identity and current context. Not inlined and
 * opaque to the optimizer: a coroutine that resumes in another thread
 * calls them again instead of reusing an address from the old thread.
 */
static __thread char aio_tls_token;
static __thread struct aio_context *aio_tls_current;

static __attribute__((noinline)) void *aio_thread_token(void)
{
	void *p = &aio_tls_token;

	__asm__ volatile("" : "+r"(p));
	return p;
}

static __attribute__((noinline)) struct aio_context **aio_current_slot(void)
{
	struct aio_context **p = &aio_tls_current;

	__asm__ volatile("" : "+r"(p));
	return p;
}

/* Any thread. */
struct aio_context *aio_get_current_context(void)
{
	return *aio_current_slot();
}

/* Calling thread only. Returns the previous current context. */
struct aio_context *aio_set_current_context(struct aio_context *ctx)
{
	struct aio_context **slot = aio_current_slot();
	struct aio_context *old = *slot;

	*slot = ctx;
	return old;
}

/*
 * Any thread. Only the holder stores its own token in ctx->holder and it
 * clears it before letting go, so another thread never reads its own
 * token there: relaxed is enough.
 */
bool aio_context_held(struct aio_context *ctx)
{
	return atomic_load_explicit(&ctx->holder, memory_order_relaxed) == aio_thread_token();
}

/*
 * aio_poll's entry. Returns false if this thread already holds @ctx
 * (nested poll, or polling an acquired context). Otherwise takes
 * hold_lock, first letting waiting acquirers in: an acquirer has kicked
 * our previous poll (aio_notify) and waits for hold_lock, which
 * pthread_cond_wait hands over.
 */
bool aio_context_hold(struct aio_context *ctx)
{
	if (aio_context_held(ctx)) {
		return false;
	}
	pthread_mutex_lock(&ctx->hold_lock);
	/*
	 * Acquire: an acquirer's increment (seq_cst RMW in
	 * aio_context_acquire) may be missed here only if its aio_notify is
	 * still to come, and that ends the poll we are about to start. The
	 * decrement happens under hold_lock, which orders it.
	 */
	while (atomic_load_explicit(&ctx->acquirers, memory_order_acquire)) {
		pthread_cond_wait(&ctx->hold_cond, &ctx->hold_lock);
	}
	atomic_store_explicit(&ctx->holder, aio_thread_token(), memory_order_relaxed);
	return true;
}

void aio_context_unhold(struct aio_context *ctx, bool locked)
{
	if (!locked) {
		return;
	}
	if (ctx->acquire_depth) {
		fprintf(stderr, "aio: aio_poll returned with its context still acquired "
				"(missing aio_context_release)\n");
		abort();
	}
	atomic_store_explicit(&ctx->holder, NULL, memory_order_relaxed);
	pthread_mutex_unlock(&ctx->hold_lock);
}

/* Any thread; see aio.h. */
void aio_context_acquire(struct aio_context *ctx)
{
	if (aio_context_held(ctx)) {
		if (ctx->acquire_depth++ == 0) {
			ctx->acquire_locked = false; /* the aio_poll that holds it unlocks */
			ctx->acquire_prev = aio_set_current_context(ctx);
		}
		return;
	}
	/*
	 * Count ourselves, then kick a holder asleep in aio_poll: its poll
	 * returns, and its next one waits in aio_context_hold until the
	 * count drops to zero. seq_cst: ordered before the notify [N1].
	 */
	atomic_fetch_add_explicit(&ctx->acquirers, 1, memory_order_seq_cst);
	aio_notify(ctx);
	pthread_mutex_lock(&ctx->hold_lock);
	atomic_store_explicit(&ctx->holder, aio_thread_token(), memory_order_relaxed);
	ctx->acquire_depth = 1;
	ctx->acquire_locked = true;
	ctx->acquire_prev = aio_set_current_context(ctx);
}

/* The thread that acquired @ctx. */
void aio_context_release(struct aio_context *ctx)
{
	if (!aio_context_held(ctx) || !ctx->acquire_depth) {
		fprintf(stderr, "aio: aio_context_release by a thread that did not acquire it\n");
		abort();
	}
	if (--ctx->acquire_depth) {
		return;
	}
	aio_set_current_context(ctx->acquire_prev);
	if (ctx->acquire_locked) {
		atomic_store_explicit(&ctx->holder, NULL, memory_order_relaxed);
		/* Under hold_lock, so a poller waiting in aio_context_hold cannot miss it. */
		if (atomic_fetch_sub_explicit(&ctx->acquirers, 1, memory_order_seq_cst) == 1) {
			pthread_cond_broadcast(&ctx->hold_cond);
		}
		pthread_mutex_unlock(&ctx->hold_lock);
	}
}

/*
 * Any thread, async-signal-safe (lock-free atomics and write(2) only).
 * Makes the owner's current or next blocking aio_poll return.
 */
void aio_notify(struct aio_context *ctx)
{
	static const uint64_t one = 1;

	/*
	 * [N1] seq_cst store: everything this thread published before (a BH
	 * push [E2], or the caller's own flags) is ordered before it. Pairs
	 * with [A1] in aio_notify_accept: either the owner's clear comes
	 * first and notified stays set, or the owner's following BH scan
	 * [P1] sees what we published.
	 */
	atomic_store_explicit(&ctx->notified, true, memory_order_seq_cst);
	AIO_PREEMPT_POINT();

	/*
	 * [N2] seq_cst load, after [N1] in the single total order. Pairs with
	 * [W1] in aio_poll: either we see notify_me raised and kick the
	 * eventfd, or the owner's check of notified after [W1] sees [N1] and
	 * does not sleep. Without this store->load ordering both sides could
	 * read the old value and the owner would sleep with work pending.
	 */
	if (atomic_load_explicit(&ctx->notify_me, memory_order_seq_cst)) {
		/* EAGAIN (counter full) still leaves the fd readable: ignore. */
		ssize_t r = write(ctx->event_fd, &one, sizeof(one));
		(void)r;
	}
}

/*
 * Owner thread, after a blocking wait and before looking for work: the
 * notifications so far are about to be handled.
 */
void aio_notify_accept(struct aio_context *ctx)
{
	/*
	 * [A1] seq_cst store, ordered before the BH list exchange [P1] and
	 * everything else this poll reads. Pairs with [N1]: a plain or
	 * release store here could become visible after our reads, and then
	 * overwrite a notifier's `true` whose work we never saw: a lost
	 * wakeup for a bare aio_notify.
	 */
	atomic_store_explicit(&ctx->notified, false, memory_order_seq_cst);
}

/* Any thread. Returns NULL if out of memory. */
struct aio_bh *aio_bh_new_named(struct aio_context *ctx, aio_bh_fn *cb, void *opaque,
				const char *name)
{
	struct aio_bh *bh = calloc(1, sizeof(*bh));

	if (!bh) {
		return NULL;
	}
	bh->ctx = ctx;
	bh->cb = cb;
	bh->opaque = opaque;
	bh->name = name;
	atomic_init(&bh->flags, 0);

	pthread_mutex_lock(&ctx->bh_all_lock);
	bh->all_next = ctx->bh_all;
	if (ctx->bh_all) {
		ctx->bh_all->all_prev = bh;
	}
	ctx->bh_all = bh;
	pthread_mutex_unlock(&ctx->bh_all_lock);
	return bh;
}

/*
 * Any thread. Sets @new_flags plus BH_PENDING and, if the BH was not
 * pending yet, pushes it on ctx->bh_list. Returns the context: once the BH
 * is visible on the list the owner may run and free it, so callers must
 * not touch @bh afterwards.
 */
static struct aio_context *aio_bh_enqueue(struct aio_bh *bh, unsigned new_flags)
{
	struct aio_context *ctx = bh->ctx;
	struct aio_bh *head;
	unsigned old;

	/*
	 * [E1] seq_cst RMW. Release: the caller's writes before scheduling
	 * are visible to the callback, whose dequeue [D1] reads this value.
	 * Acquire: pairs with [D1]'s release, so if we see BH_PENDING
	 * cleared, the owner has finished reading bh->next and we may
	 * overwrite it below.
	 */
	old = atomic_fetch_or_explicit(&bh->flags, BH_PENDING | new_flags, memory_order_seq_cst);
	if (old & BH_PENDING) {
		return ctx; /* already on a list; the flags are all it needs */
	}
	AIO_PREEMPT_POINT();

	head = atomic_load_explicit(&ctx->bh_list, memory_order_relaxed);
	do {
		bh->next = head;
		/*
		 * [E2] seq_cst CAS. Release: bh->next and the flags are
		 * visible to whoever takes the list [P1] or scans it
		 * (aio_bh_timeout). Its place in the total order before [N1]
		 * (aio_notify) and [I1] (idle) is what the wakeup
		 * protocol relies on.
		 */
	} while (!atomic_compare_exchange_weak_explicit(
	    &ctx->bh_list, &head, bh, memory_order_seq_cst, memory_order_relaxed));
	return ctx;
}

/* Any thread, lock-free. */
void aio_bh_schedule(struct aio_bh *bh)
{
	aio_notify(aio_bh_enqueue(bh, BH_SCHEDULED));
}

/*
 * Any thread, lock-free. Does not kick the owner out of a sleep that ends
 * within AIO_IDLE_BH_NS anyway; a longer (or unbounded) sleep is cut short
 * so that the BH runs within AIO_IDLE_BH_NS.
 */
void aio_bh_schedule_idle(struct aio_bh *bh)
{
	struct aio_context *ctx = aio_bh_enqueue(bh, BH_SCHEDULED | BH_IDLE);

	/*
	 * [I1] seq_cst load after our push [E2]. Pairs with [L1] in
	 * aio_poll: the owner sets long_sleep, then re-reads the list head;
	 * either it sees our push and shortens its timeout, or we see
	 * long_sleep and wake it.
	 */
	if (atomic_load_explicit(&ctx->long_sleep, memory_order_seq_cst)) {
		aio_notify(ctx);
	}
}

/* Any thread. */
void aio_bh_cancel(struct aio_bh *bh)
{
	/*
	 * No ordering needed: the decision to run is taken by the RMW [D1]
	 * on this same word, and RMWs on one object are totally ordered.
	 * The BH stays pending until the owner dequeues it.
	 */
	atomic_fetch_and_explicit(&bh->flags, ~(unsigned)BH_SCHEDULED, memory_order_relaxed);
}

/*
 * Owner thread, also from the BH's own callback. No thread may schedule
 * @bh afterwards. The memory is reclaimed by the next aio_bh_poll (or by
 * aio_context_free); no wakeup is needed for that.
 */
void aio_bh_delete(struct aio_bh *bh)
{
	if (bh) {
		aio_bh_enqueue(bh, BH_DELETED);
	}
}

/* Any thread. Returns 0 or -ENOMEM. */
int aio_bh_schedule_oneshot_named(struct aio_context *ctx, aio_bh_fn *cb, void *opaque,
				  const char *name)
{
	struct aio_bh *bh = calloc(1, sizeof(*bh));

	if (!bh) {
		return -ENOMEM;
	}
	bh->ctx = ctx;
	bh->cb = cb;
	bh->opaque = opaque;
	bh->name = name;
	atomic_init(&bh->flags, BH_ONESHOT);
	aio_notify(aio_bh_enqueue(bh, BH_SCHEDULED));
	return 0;
}

/* Owner thread. Reverses a LIFO chain taken from ctx->bh_list. */
static struct aio_bh *bh_chain_reverse(struct aio_bh *bh)
{
	struct aio_bh *prev = NULL;

	while (bh) {
		struct aio_bh *next = bh->next;

		bh->next = prev;
		prev = bh;
		bh = next;
	}
	return prev;
}

/*
 * Owner thread. Runs every scheduled BH that was pending when called, and
 * those of outer (nested-into) polls that had not run yet. Returns true if
 * a non-idle callback ran.
 */
bool aio_bh_poll(struct aio_context *ctx)
{
	struct aio_bh_slice slice;
	struct aio_bh_slice *s;
	bool progress = false;

	/*
	 * [P1] seq_cst exchange. Acquire: pairs with [E2], so bh->next of
	 * every node in the chain (and the scheduling threads' writes) are
	 * visible. Its place after [A1] in the total order closes the
	 * "notified cleared too late" race (see [A1]).
	 */
	slice.head =
	    bh_chain_reverse(atomic_exchange_explicit(&ctx->bh_list, NULL, memory_order_seq_cst));
	if (!slice.head && !ctx->slices) {
		return false;
	}
	slice.next = NULL;
	*ctx->slices_tail = &slice;
	ctx->slices_tail = &slice.next;

	/*
	 * Run slices oldest first. A nested aio_bh_poll (from a callback)
	 * continues this loop, so when it returns every slice, ours too, is
	 * done and off the queue: &slice never outlives this frame.
	 */
	while ((s = ctx->slices)) {
		struct aio_bh *bh = s->head;
		unsigned flags;

		if (!bh) {
			ctx->slices = s->next;
			if (!ctx->slices) {
				ctx->slices_tail = &ctx->slices;
			}
			continue;
		}
		s->head = bh->next;
		/*
		 * [D1] acq_rel RMW. Release: our read of bh->next above is
		 * done before BH_PENDING clears and a scheduler [E1] may
		 * rewrite it. Acquire: pairs with [E1], so the writes made
		 * before the latest aio_bh_schedule are visible to the
		 * callback.
		 */
		flags = atomic_fetch_and_explicit(&bh->flags,
						  ~(unsigned)(BH_PENDING | BH_SCHEDULED | BH_IDLE),
						  memory_order_acq_rel);
		if ((flags & (BH_SCHEDULED | BH_DELETED)) == BH_SCHEDULED) {
			if (!(flags & BH_IDLE)) {
				progress = true; /* idle BHs are housekeeping, not progress */
			}
			bh->cb(bh->opaque);
		}
		if (flags & (BH_DELETED | BH_ONESHOT)) {
			aio_bh_free(bh);
		}
	}
	return progress;
}

static int64_t bh_chain_timeout(struct aio_bh *bh, int64_t timeout)
{
	for (; bh; bh = bh->next) {
		/* A hint only: the run decision is [D1]. */
		unsigned flags = atomic_load_explicit(&bh->flags, memory_order_relaxed);

		if ((flags & (BH_SCHEDULED | BH_DELETED)) == BH_SCHEDULED) {
			if (!(flags & BH_IDLE)) {
				return 0;
			}
			timeout = AIO_IDLE_BH_NS;
		}
	}
	return timeout;
}

/*
 * Owner thread. How long aio_poll may sleep as far as BHs are concerned:
 * 0 (a BH is scheduled), AIO_IDLE_BH_NS (only idle BHs) or -1 (none).
 * Stores the list head it scanned in *head_seen, for aio_poll's [L1] check.
 */
int64_t aio_bh_timeout(struct aio_context *ctx, struct aio_bh **head_seen)
{
	struct aio_bh_slice *s;
	int64_t timeout;

	/* seq_cst load (acquire is what matters): pairs with [E2] for bh->next. */
	*head_seen = atomic_load_explicit(&ctx->bh_list, memory_order_seq_cst);
	timeout = bh_chain_timeout(*head_seen, -1);
	for (s = ctx->slices; s && timeout; s = s->next) {
		timeout = bh_chain_timeout(s->head, timeout);
	}
	return timeout;
}

/* ---- aio_call_sync ---- */

struct aio_sync_call {
	void (*fn)(void *);
	void *arg;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

static void aio_sync_call_bh(void *opaque)
{
	struct aio_sync_call *c = opaque;

	c->fn(c->arg);
	pthread_mutex_lock(&c->lock);
	c->done = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

int aio_call_sync(struct aio_context *ctx, struct aio_context *self_ctx, void (*fn)(void *),
		  void *arg)
{
	struct aio_sync_call c = {.fn = fn, .arg = arg};
	int ret;

	if (ctx == self_ctx) {
		fn(arg);
		return 0;
	}
	pthread_mutex_init(&c.lock, NULL);
	pthread_cond_init(&c.cond, NULL);
	ret = aio_bh_schedule_oneshot(ctx, aio_sync_call_bh, &c);
	if (ret == 0) {
		pthread_mutex_lock(&c.lock);
		while (!c.done)
			pthread_cond_wait(&c.cond, &c.lock);
		pthread_mutex_unlock(&c.lock);
	}
	pthread_cond_destroy(&c.cond);
	pthread_mutex_destroy(&c.lock);
	return ret;
}
