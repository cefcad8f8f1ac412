/* SPDX-License-Identifier: MIT */
/*
 * Cross-thread coroutine stress. Coroutines owned by an iothread's context
 * are woken thousands of times from other threads (a plain thread, and a
 * coroutine living in a second iothread's context), while the main thread,
 * from a BH of its own context, keeps taking the iothread's context
 * (aio_context_acquire), waking coroutines there directly, scheduling
 * some, and polling it, so that the coroutine BH also runs in the main
 * thread.
 *
 * Every run of a coroutine checks that it is in its own context: the
 * current context is the iothread's, the thread running it holds that
 * context, and that thread is the iothread, or the main thread while it
 * has the context acquired (the owning thread at that moment). None runs
 * twice for one wakeup or concurrently with itself, and none is lost:
 * in the end every coroutine ran exactly once per wakeup, plus its first
 * entry. A run in the main thread's context instead (QEMU's bug, see
 * aio/aio_co.c) fails the context check.
 *
 * Wakeups are claimed: a coroutine publishes `waiting` just before it
 * yields, and a waker must win a CAS on it before aio_co_wake, so each
 * wakeup is legitimate and counted.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "aio/aio.h"
#include "aio/aio_int.h" /* aio_test_preempt_hook */
#include "tests/unit/aio_test_util.h"

AIO_TEST_ASAN_FAKE_STACKS

#define NR_CO	 8
#define STALL_NS (20 * 1000000000LL) /* no progress for this long: lost */

/* TSan is ~10x slower; the same interleavings with fewer rounds. */
#if defined(__SANITIZE_THREAD__)
#define WAKES 12000
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WAKES 12000
#endif
#endif
#ifndef WAKES
#define WAKES 100000
#endif

struct stress;

struct co_state {
	struct stress *s;
	int id;
	struct coroutine *co;
	atomic_int waiting; /* yielded and claimable: a waker CASes it 1 -> 0 */
	atomic_int wakes;   /* claimed wakeups */
	atomic_int runs;    /* entries, the first one included */
	atomic_int in_run;  /* 1 while running */
	atomic_int on_io, on_main;
	atomic_bool stop; /* return at the next run */
	atomic_bool returned;
};

struct stress {
	struct aio_context *main_ctx;
	struct iothread *io, *io2;
	struct aio_context *io_ctx, *io2_ctx;
	pthread_t main_tid, io_tid, io2_tid;
	struct co_state c[NR_CO];
	atomic_int total_wakes;
	atomic_int total_runs;
	atomic_bool main_holds; /* the main thread has io_ctx acquired */
	atomic_bool wakers_stop;
	atomic_int wakers_done;
	/* violations, counted where they happen and asserted by the main thread */
	atomic_int bad_ctx, bad_held, bad_thread, bad_self, bad_concurrent, bad_extra, bad_mover;
	atomic_int mover_moves;
	/* main thread borrows */
	struct aio_bh *borrow_bh;
	int borrows;
	int main_direct, main_scheduled;
};

static __attribute__((noinline)) pthread_t this_thread(void)
{
	/* pthread_self() is declared const: do not let a coroutine reuse it across a yield. */
	__asm__ volatile("" ::: "memory");
	return pthread_self();
}

static void check_run(struct stress *s, struct co_state *c)
{
	pthread_t me = this_thread();

	if (atomic_exchange(&c->in_run, 1)) {
		atomic_fetch_add(&s->bad_concurrent, 1);
	}
	if (aio_get_current_context() != s->io_ctx ||
	    coroutine_get_context(coroutine_self()) != s->io_ctx) {
		atomic_fetch_add(&s->bad_ctx, 1);
	}
	if (!aio_context_held(s->io_ctx)) {
		atomic_fetch_add(&s->bad_held, 1);
	}
	if (coroutine_self() != c->co) {
		atomic_fetch_add(&s->bad_self, 1);
	}
	if (pthread_equal(me, s->io_tid) && !atomic_load(&s->main_holds)) {
		atomic_fetch_add(&c->on_io, 1);
	} else if (pthread_equal(me, s->main_tid) && atomic_load(&s->main_holds)) {
		atomic_fetch_add(&c->on_main, 1);
	} else {
		atomic_fetch_add(&s->bad_thread, 1);
	}
	/* More runs than wakeups (+ the first entry): a wakeup ran it twice. */
	if (atomic_fetch_add(&c->runs, 1) + 1 > atomic_load(&c->wakes) + 1) {
		atomic_fetch_add(&s->bad_extra, 1);
	}
	atomic_fetch_add(&s->total_runs, 1);
}

static void stress_co(void *opaque)
{
	struct co_state *c = opaque;
	struct stress *s = c->s;

	for (;;) {
		check_run(s, c);
		atomic_store(&c->in_run, 0);
		if (atomic_load(&c->stop)) {
			break;
		}
		atomic_store(&c->waiting, 1); /* from here on anyone may wake us */
		coroutine_yield();
	}
	atomic_store(&c->returned, true);
}

/* Any thread: claim a waiting coroutine, or NULL. */
static struct co_state *claim(struct stress *s, unsigned *seed)
{
	struct co_state *c = &s->c[rand_r(seed) % NR_CO];
	int one = 1;

	if (!atomic_compare_exchange_strong(&c->waiting, &one, 0)) {
		return NULL;
	}
	atomic_fetch_add(&c->wakes, 1);
	atomic_fetch_add(&s->total_wakes, 1);
	return c;
}

static void *waker_thread(void *opaque)
{
	struct stress *s = opaque;
	unsigned seed = 42;

	while (!atomic_load(&s->wakers_stop)) {
		struct co_state *c = claim(s, &seed);

		if (c) {
			aio_co_wake(c->co);
		} else {
			sched_yield();
		}
	}
	atomic_fetch_add(&s->wakers_done, 1);
	return NULL;
}

/*
 * A waker that is itself a coroutine. It moves between the two iothreads'
 * contexts every round (aio_co_schedule(other, self) + yield): in the
 * second iothread's context its wakeups are scheduled into the first one;
 * in the first one they are deferred until it yields (aio_co_enter from a
 * coroutine of the same context).
 */
static void waker_co(void *opaque)
{
	struct stress *s = opaque;
	struct aio_context *here = s->io2_ctx;
	unsigned seed = 7;
	int i;

	while (!atomic_load(&s->wakers_stop)) {
		if (aio_get_current_context() != here || !aio_context_held(here) ||
		    coroutine_get_context(coroutine_self()) != here) {
			atomic_fetch_add(&s->bad_mover, 1);
		}
		for (i = 0; i < 16; i++) {
			struct co_state *c = claim(s, &seed);

			if (c) {
				aio_co_wake(c->co);
			}
		}
		here = here == s->io_ctx ? s->io2_ctx : s->io_ctx;
		aio_co_schedule(here, coroutine_self());
		coroutine_yield();
		atomic_fetch_add(&s->mover_moves, 1);
	}
	atomic_fetch_add(&s->wakers_done, 1);
}

/*
 * Main thread, a BH of main_ctx: hold the iothread's context for a moment,
 * wake one coroutine directly and schedule another, and poll the context.
 */
static void borrow_bh(void *opaque)
{
	struct stress *s = opaque;
	static unsigned seed = 99;
	struct co_state *c;
	int i;

	aio_context_acquire(s->io_ctx);
	atomic_store(&s->main_holds, true);
	if ((c = claim(s, &seed))) {
		aio_co_wake(c->co); /* we hold its context: entered right here */
		s->main_direct++;
	}
	if ((c = claim(s, &seed))) {
		aio_co_schedule(s->io_ctx, c->co); /* runs from the BH, maybe in this poll */
		s->main_scheduled++;
	}
	for (i = 0; i < 3; i++) {
		aio_poll(s->io_ctx, false);
	}
	atomic_store(&s->main_holds, false);
	aio_context_release(s->io_ctx);
	s->borrows++;
}

struct tid_probe {
	pthread_t tid;
	atomic_bool known;
};

static void tid_bh(void *opaque)
{
	struct tid_probe *p = opaque;

	p->tid = pthread_self();
	atomic_store(&p->known, true);
}

/* The id of the thread that polls @ctx: learnt through a BH it runs. */
static pthread_t poller_tid(struct aio_context *ctx)
{
	struct tid_probe p = {0};

	assert_int_equal(aio_bh_schedule_oneshot(ctx, tid_bh, &p), 0);
	while (!atomic_load(&p.known)) {
		sched_yield();
	}
	return p.tid;
}

static void report(struct stress *s, const char *what)
{
	int i;

	fprintf(stderr,
		"  bad: ctx %d held %d thread %d self %d concurrent %d extra %d mover %d; "
		"misuse reports %lu\n",
		atomic_load(&s->bad_ctx), atomic_load(&s->bad_held), atomic_load(&s->bad_thread),
		atomic_load(&s->bad_self), atomic_load(&s->bad_concurrent),
		atomic_load(&s->bad_extra), atomic_load(&s->bad_mover), coroutine_error_count());

	for (i = 0; i < NR_CO; i++) {
		fprintf(stderr, "  co %d: wakes %d runs %d waiting %d on_io %d on_main %d\n", i,
			atomic_load(&s->c[i].wakes), atomic_load(&s->c[i].runs),
			atomic_load(&s->c[i].waiting), atomic_load(&s->c[i].on_io),
			atomic_load(&s->c[i].on_main));
	}
	fail_msg("%s: %d wakeups, %d runs", what, atomic_load(&s->total_wakes),
		 atomic_load(&s->total_runs));
}

static int violations(struct stress *s)
{
	return atomic_load(&s->bad_ctx) + atomic_load(&s->bad_held) + atomic_load(&s->bad_thread) +
	       atomic_load(&s->bad_self) + atomic_load(&s->bad_concurrent) +
	       atomic_load(&s->bad_extra) + atomic_load(&s->bad_mover) +
	       (int)coroutine_error_count();
}

/*
 * Main thread: keep borrowing until @done(s) holds. Fails at the first
 * violation, or if progress stalls (a lost wakeup).
 */
static void main_loop(struct stress *s, bool (*done)(struct stress *), bool borrow)
{
	int64_t last = aio_clock_ns();
	int seen = -1;

	while (!done(s)) {
		int runs = atomic_load(&s->total_runs);

		if (violations(s)) {
			report(s, "a coroutine ran outside its context, twice, or was misused");
		}
		if (runs != seen) {
			seen = runs;
			last = aio_clock_ns();
		} else if (aio_clock_ns() - last > STALL_NS) {
			report(s, "no progress (a lost wakeup?)");
		}
		if (borrow) {
			aio_bh_schedule(s->borrow_bh);
			aio_poll(s->main_ctx, true);
		}
		sched_yield();
	}
}

static bool all_waiting(struct stress *s)
{
	int i;

	for (i = 0; i < NR_CO; i++) {
		if (!atomic_load(&s->c[i].waiting)) {
			return false;
		}
	}
	return true;
}

static bool enough_wakes(struct stress *s)
{
	return atomic_load(&s->total_wakes) >= WAKES;
}

static bool wakers_done(struct stress *s)
{
	return atomic_load(&s->wakers_done) == 2;
}

static bool settled(struct stress *s)
{
	return atomic_load(&s->total_runs) == atomic_load(&s->total_wakes) + NR_CO;
}

static void test_co_cross_thread_wake(void **state)
{
	struct stress *s = calloc(1, sizeof(*s));
	struct coroutine *wco;
	pthread_t waker;
	int i;

	assert_non_null(s);
	s->main_ctx = *state;
	s->main_tid = pthread_self();
	assert_int_equal(iothread_new("co-stress", &s->io), 0);
	assert_int_equal(iothread_new("co-stress2", &s->io2), 0);
	s->io_ctx = iothread_get_aio_context(s->io);
	s->io2_ctx = iothread_get_aio_context(s->io2);
	s->io_tid = poller_tid(s->io_ctx);
	s->io2_tid = poller_tid(s->io2_ctx);
	s->borrow_bh = aio_bh_new(s->main_ctx, borrow_bh, s);
	assert_non_null(s->borrow_bh);

	/* First entries: scheduled into the iothread's context from here. */
	for (i = 0; i < NR_CO; i++) {
		s->c[i].s = s;
		s->c[i].id = i;
		assert_int_equal(coroutine_new(stress_co, &s->c[i], &s->c[i].co), 0);
		aio_co_schedule(s->io_ctx, s->c[i].co);
	}
	main_loop(s, all_waiting, false);

	assert_int_equal(pthread_create(&waker, NULL, waker_thread, s), 0);
	assert_int_equal(coroutine_new(waker_co, s, &wco), 0);
	aio_co_schedule(s->io2_ctx, wco);
	main_loop(s, enough_wakes, true);
	atomic_store(&s->wakers_stop, true);
	main_loop(s, wakers_done, true);
	pthread_join(waker, NULL);
	main_loop(s, settled, false); /* every claimed wakeup ran: none lost */
	main_loop(s, all_waiting, false);

	/* The end: the main thread stops them all while holding the context, half
	 * entered directly, half through the coroutine BH running in this thread. */
	aio_context_acquire(s->io_ctx);
	atomic_store(&s->main_holds, true);
	for (i = 0; i < NR_CO; i++) {
		struct co_state *c = &s->c[i];
		int one = 1;

		atomic_store(&c->stop, true);
		assert_true(atomic_compare_exchange_strong(&c->waiting, &one, 0));
		atomic_fetch_add(&c->wakes, 1);
		atomic_fetch_add(&s->total_wakes, 1);
		if (i % 2) {
			aio_co_wake(c->co);
			assert_true(atomic_load(&c->returned));
		} else {
			aio_co_schedule(s->io_ctx, c->co);
		}
	}
	while (aio_poll(s->io_ctx, false)) {
	}
	atomic_store(&s->main_holds, false);
	aio_context_release(s->io_ctx);

	fprintf(stderr,
		"  %d wakeups, %d runs, %d borrows (%d direct, %d scheduled), %d waker moves\n",
		atomic_load(&s->total_wakes), atomic_load(&s->total_runs), s->borrows,
		s->main_direct, s->main_scheduled, atomic_load(&s->mover_moves));
	assert_int_equal(atomic_load(&s->bad_mover), 0);
	assert_true(atomic_load(&s->mover_moves) >= 2);
	assert_int_equal(atomic_load(&s->bad_ctx), 0);
	assert_int_equal(atomic_load(&s->bad_held), 0);
	assert_int_equal(atomic_load(&s->bad_thread), 0);
	assert_int_equal(atomic_load(&s->bad_self), 0);
	assert_int_equal(atomic_load(&s->bad_concurrent), 0);
	assert_int_equal(atomic_load(&s->bad_extra), 0);
	assert_int_equal(coroutine_error_count(), 0); /* no double schedule, ever */
	for (i = 0; i < NR_CO; i++) {
		struct co_state *c = &s->c[i];

		assert_true(atomic_load(&c->returned));
		assert_int_equal(atomic_load(&c->runs), atomic_load(&c->wakes) + 1);
		assert_true(atomic_load(&c->on_io) >= 1);   /* the first entry */
		assert_true(atomic_load(&c->on_main) >= 1); /* the last */
	}
	assert_int_equal(atomic_load(&s->total_runs), atomic_load(&s->total_wakes) + NR_CO);
	assert_true(atomic_load(&s->total_wakes) >= WAKES);

	aio_bh_delete(s->borrow_bh);
	iothread_destroy(s->io2); /* the waker coroutine has returned (wakers_done) */
	iothread_destroy(s->io);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_co_cross_thread_wake, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	};

	aio_test_init(300);
	aio_test_preempt_hook = aio_test_preempt;
	return cmocka_run_group_tests_name("aio_co_stress", tests, NULL, NULL);
}
