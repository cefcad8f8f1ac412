/* SPDX-License-Identifier: MIT */
/*
 * Coroutines in AioContexts: aio_co_schedule, aio_co_enter, aio_co_wake.
 *
 * Each context has a lock-free LIFO of scheduled coroutines (ctx->co_list)
 * and one BH (ctx->co_bh). aio_co_schedule pushes and schedules the BH;
 * the BH takes the whole list, reverses it and enters the coroutines in
 * the order they were scheduled.
 *
 * The rule that matters: the BH enters them in *its own* context, the one
 * it belongs to, whichever thread runs it. QEMU once entered them in the
 * polling thread's context instead (fixed by "util/async: use
 * qemu_aio_coroutine_enter in co_schedule_bh_cb"): when the main thread
 * polled an iothread's context, the coroutines it ran silently moved to
 * the main context, and later wakeups then ran them in the wrong thread.
 *
 * Ownership of co->sched_next follows co->scheduled: the thread whose CAS
 * sets it from NULL writes sched_next and pushes; the enter loop reads
 * sched_next before it clears `scheduled` (release, co_claim).
 */
#include <errno.h>
#include <stdio.h>

#include "aio/aio_int.h"

/* Any thread. @co is scheduled (we set co->scheduled) and has yielded. */
void aio_co_push(struct aio_context *ctx, struct coroutine *co)
{
	struct coroutine *head = atomic_load_explicit(&ctx->co_list, memory_order_relaxed);

	do {
		co->sched_next = head;
		/*
		 * Release: sched_next, and what the scheduler and the
		 * coroutine wrote before, are visible to the BH that takes
		 * the list (acquire exchange in co_schedule_bh).
		 */
	} while (!atomic_compare_exchange_weak_explicit(
	    &ctx->co_list, &head, co, memory_order_release, memory_order_relaxed));
	aio_bh_schedule(ctx->co_bh);
}

/*
 * The context's holder, from aio_poll. Taken coroutines wait on
 * ctx->co_run, so that a nested aio_poll (from a coroutine run here) that
 * runs this BH again continues with the older ones first.
 */
static void co_schedule_bh(void *opaque)
{
	struct aio_context *ctx = opaque;
	struct coroutine *co, *next, *fifo = NULL, **tail = &fifo;

	/* Acquire: pairs with the release CAS in aio_co_push. */
	co = atomic_exchange_explicit(&ctx->co_list, NULL, memory_order_acquire);
	for (; co; co = next) {
		next = co->sched_next;
		co->sched_next = fifo;
		if (!fifo) {
			tail = &co->sched_next;
		}
		fifo = co;
	}
	if (fifo) {
		*ctx->co_run_tail = fifo;
		ctx->co_run_tail = tail;
	}
	while ((co = ctx->co_run)) {
		ctx->co_run = co->sched_next; /* before co_claim clears `scheduled` */
		if (!ctx->co_run) {
			ctx->co_run_tail = &ctx->co_run;
		}
		/* In ctx, the BH's own context: never the polling thread's. */
		coroutine_enter_loop(ctx, co, true, NULL);
	}
}

int aio_co_init(struct aio_context *ctx)
{
	atomic_init(&ctx->co_list, NULL);
	ctx->co_run = NULL;
	ctx->co_run_tail = &ctx->co_run;
	ctx->co_bh = aio_bh_new_named(ctx, co_schedule_bh, ctx, "aio_co_schedule");
	return ctx->co_bh ? 0 : -ENOMEM;
}

/* Owner, from aio_context_free: reports coroutines still scheduled. */
int aio_co_cleanup(struct aio_context *ctx)
{
	struct coroutine *co, *next;
	int leaks = 0;

	co = atomic_exchange_explicit(&ctx->co_list, NULL, memory_order_acquire);
	for (; co; co = next) {
		next = co->sched_next;
		fprintf(stderr,
			"aio: coroutine '%s' still scheduled (by '%s') at aio_context_free\n",
			co->name, atomic_load_explicit(&co->scheduled, memory_order_relaxed));
		leaks++;
		/* No longer scheduled anywhere: its owner may delete it if it never ran. */
		atomic_store_explicit(&co->scheduled, NULL, memory_order_release);
	}
	aio_bh_delete(ctx->co_bh);
	return leaks;
}

void aio_co_schedule_from(struct aio_context *ctx, struct coroutine *co, const char *caller)
{
	const char *first = NULL;

	if (!ctx || !co) {
		coroutine_report("aio_co_schedule from '%s' without a %s: ignored", caller,
				 ctx ? "coroutine" : "context");
		return;
	}
	if (!atomic_load_explicit(&co->live, memory_order_relaxed)) {
		coroutine_report("coroutine %p scheduled by '%s' after it returned: ignored",
				 (void *)co, caller);
		return;
	}
	/*
	 * The winner owns co->sched_next until the enter loop clears the
	 * mark. Acquire: pairs with that release clear in co_claim, so the
	 * loop's read of sched_next is done before we rewrite it. Release:
	 * publishes what we did before to whoever sees the mark.
	 */
	if (!atomic_compare_exchange_strong_explicit(&co->scheduled, &first, caller,
						     memory_order_acq_rel, memory_order_acquire)) {
		coroutine_report("coroutine '%s' scheduled by '%s' but already scheduled by '%s': "
				 "second schedule ignored",
				 co->name, caller, first);
		return;
	}
	if (co == coroutine_self()) {
		/*
		 * Scheduling itself, typically to move to another context:
		 * pushing now would let that context's holder enter it
		 * before it has yielded. The enter loop pushes it as soon
		 * as it has switched out (co_finish).
		 */
		co->resched_ctx = ctx;
		return;
	}
	aio_co_push(ctx, co);
}

void aio_co_enter_from(struct aio_context *ctx, struct coroutine *co, const char *caller)
{
	struct coroutine *self;
	const char *first = NULL;

	if (!ctx || ctx != aio_get_current_context()) {
		/* Not ours to run here: its context's holder will. */
		aio_co_schedule_from(ctx, co, caller);
		return;
	}
	self = coroutine_self();
	if (!self) {
		coroutine_enter_loop(ctx, co, false, caller);
		return;
	}
	if (atomic_load_explicit(&self->ctx, memory_order_relaxed) != ctx) {
		/*
		 * A coroutine of another context polls @ctx (nested aio_poll):
		 * deferring to it would enter @co when it yields, in its own
		 * context. The BH of @ctx enters @co in @ctx instead.
		 */
		aio_co_schedule_from(ctx, co, caller);
		return;
	}
	if (self == co) {
		coroutine_report("coroutine '%s' woken by itself in '%s': ignored", co->name,
				 caller);
		return;
	}
	/*
	 * From inside a coroutine of the same context: run @co right after
	 * the caller yields. Marked scheduled meanwhile, so that waking it
	 * twice is reported like scheduling it twice.
	 */
	if (!atomic_compare_exchange_strong_explicit(&co->scheduled, &first, caller,
						     memory_order_acq_rel, memory_order_acquire)) {
		coroutine_report("coroutine '%s' woken by '%s' but already scheduled by '%s': "
				 "second wakeup ignored",
				 co->name, caller, first);
		return;
	}
	co->wake_next = NULL;
	*self->wake_tail = co;
	self->wake_tail = &co->wake_next;
}

void aio_co_wake_from(struct coroutine *co, const char *caller)
{
	/* Acquire: pairs with the release store in coroutine_enter_loop. */
	struct aio_context *ctx = atomic_load_explicit(&co->ctx, memory_order_acquire);

	if (!ctx) {
		coroutine_report("coroutine '%s' woken by '%s' but it has not run in any context: "
				 "ignored",
				 co->name, caller);
		return;
	}
	aio_co_enter_from(ctx, co, caller);
}
