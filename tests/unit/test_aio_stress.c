/* SPDX-License-Identifier: MIT */
/*
 * Cross-thread BH stress: several threads schedule BHs on one context
 * thousands of times while its owner sleeps in blocking aio_poll. Every
 * scheduled BH must run, none may be lost, none may run twice.
 *
 * Lost wakeups are detectable: the owner only ever polls with blocking =
 * true, and producers wait for their BH to run before the next round, so a
 * lost wakeup leaves everybody asleep. A watchdog then wakes the owner
 * through a separate fd (not aio_notify, which would hide the bug) and the
 * test fails, naming what was missing.
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

#define NR_PRODUCERS 3
#ifndef WATCHDOG_S
#define WATCHDOG_S 30
#endif

/* Fewer rounds under TSan, which is ~10x slower; same interleavings. */
#if defined(__SANITIZE_THREAD__)
#define ROUNDS 1500
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ROUNDS 1500
#endif
#endif
#ifndef ROUNDS
#define ROUNDS 4000
#endif

struct stress;

struct producer {
	struct stress *s;
	int id;
	struct aio_bh *bh;
	atomic_int ran;	 /* runs of bh, counted by its callback */
	atomic_int sent; /* rounds scheduled */
	pthread_t tid;
	unsigned seed;
	int payload; /* written before each schedule, checked by the callback */
};

struct stress {
	struct aio_context *ctx;
	struct aio_watchdog wd;
	struct producer p[NR_PRODUCERS];
	atomic_bool abort; /* watchdog fired: producers give up */
	atomic_int total_ran;
	atomic_int bad_payload;
	/* one-shot burst */
	atomic_int *oneshot_runs; /* per id */
	int oneshots_per_producer;
	/* shared BH */
	struct aio_bh *shared_bh;
	atomic_int requests; /* tickets handed out */
	atomic_int handled;  /* tickets seen by the shared callback */
	atomic_int shared_runs;
};

/* Vary the interleaving: sometimes schedule while the owner is asleep. */
static void jitter(struct producer *p)
{
	unsigned r = rand_r(&p->seed) % 16;

	if (r == 0) {
		sleep_ns(20000);
	} else if (r < 4) {
		sched_yield();
	}
}

static void pingpong_cb(void *opaque)
{
	struct producer *p = opaque;

	/* Plain data written before the schedule must be visible here. */
	if (p->payload != atomic_load_explicit(&p->ran, memory_order_relaxed) + 1) {
		atomic_fetch_add(&p->s->bad_payload, 1);
	}
	atomic_fetch_add(&p->ran, 1);
	atomic_fetch_add(&p->s->total_ran, 1);
}

static void *pingpong_thread(void *opaque)
{
	struct producer *p = opaque;
	int i;

	for (i = 1; i <= ROUNDS && !atomic_load(&p->s->abort); i++) {
		jitter(p);
		p->payload = i;
		atomic_store(&p->sent, i);
		aio_bh_schedule(p->bh);
		wait_at_least(&p->ran, i, &p->s->abort);
	}
	return NULL;
}

/* Owner: blocking polls only, until @target runs or the watchdog fires. */
static void owner_loop(struct stress *s, atomic_int *count, int target)
{
	while (atomic_load(count) < target && !atomic_load(&s->wd.fired)) {
		aio_test_preempt(); /* between checking for work and sleeping */
		aio_poll(s->ctx, true);
	}
	if (atomic_load(&s->wd.fired)) {
		atomic_store(&s->abort, true);
	}
}

static void stress_init(struct stress *s)
{
	int i;

	memset(s, 0, sizeof(*s));
	assert_int_equal(aio_context_new(&s->ctx), 0);
	aio_watchdog_start(&s->wd, s->ctx, WATCHDOG_S);
	for (i = 0; i < NR_PRODUCERS; i++) {
		s->p[i].s = s;
		s->p[i].id = i;
		s->p[i].seed = 1234u + i;
	}
}

static void stress_fini(struct stress *s)
{
	aio_watchdog_stop(&s->wd);
	assert_int_equal(aio_context_free(s->ctx), 0);
}

static void report_lost(struct stress *s, const char *what)
{
	int i;

	for (i = 0; i < NR_PRODUCERS; i++) {
		fprintf(stderr, "  producer %d: sent %d, ran %d\n", i, atomic_load(&s->p[i].sent),
			atomic_load(&s->p[i].ran));
	}
	fail_msg("lost wakeup in %s: the owner slept with work pending", what);
}

static void test_stress_pingpong(void **state)
{
	struct stress s;
	int i;

	(void)state;
	stress_init(&s);
	for (i = 0; i < NR_PRODUCERS; i++) {
		s.p[i].bh = aio_bh_new(s.ctx, pingpong_cb, &s.p[i]);
		assert_non_null(s.p[i].bh);
	}
	assert_int_equal(atomic_load(&s.total_ran), 0);
	for (i = 0; i < NR_PRODUCERS; i++) {
		assert_int_equal(pthread_create(&s.p[i].tid, NULL, pingpong_thread, &s.p[i]), 0);
	}
	owner_loop(&s, &s.total_ran, NR_PRODUCERS * ROUNDS);
	for (i = 0; i < NR_PRODUCERS; i++) {
		pthread_join(s.p[i].tid, NULL);
	}
	if (atomic_load(&s.wd.fired)) {
		report_lost(&s, "ping-pong");
	}
	assert_false(aio_poll(s.ctx, false)); /* nothing left over */
	for (i = 0; i < NR_PRODUCERS; i++) {
		assert_int_equal(atomic_load(&s.p[i].ran), ROUNDS); /* each exactly once */
		aio_bh_delete(s.p[i].bh);
	}
	assert_int_equal(atomic_load(&s.total_ran), NR_PRODUCERS * ROUNDS);
	assert_int_equal(atomic_load(&s.bad_payload), 0);
	stress_fini(&s);
}

struct oneshot_arg {
	struct stress *s;
	int id;
};

static void oneshot_cb(void *opaque)
{
	struct oneshot_arg *a = opaque;

	atomic_fetch_add(&a->s->oneshot_runs[a->id], 1);
	atomic_fetch_add(&a->s->total_ran, 1);
}

static void *oneshot_thread(void *opaque)
{
	struct producer *p = opaque;
	struct stress *s = p->s;
	struct oneshot_arg *args = calloc(s->oneshots_per_producer, sizeof(*args));
	int i;

	for (i = 0; i < s->oneshots_per_producer && args; i++) {
		args[i].s = s;
		args[i].id = p->id * s->oneshots_per_producer + i;
		if (i % 64 == 0) {
			jitter(p);
		}
		if (aio_bh_schedule_oneshot(s->ctx, oneshot_cb, &args[i])) {
			break; /* out of memory: the owner's count shows it */
		}
		atomic_store(&p->sent, i + 1);
	}
	/* args must outlive the callbacks: wait for the owner to finish. */
	wait_at_least(&s->total_ran, NR_PRODUCERS * s->oneshots_per_producer, &s->abort);
	if (!atomic_load(&s->abort)) {
		free(args); /* after a lost wakeup some may still be pending: leak */
	}
	return NULL;
}

static void test_stress_oneshot_burst(void **state)
{
	struct stress s;
	int i, total;

	(void)state;
	stress_init(&s);
	s.oneshots_per_producer = ROUNDS;
	total = NR_PRODUCERS * ROUNDS;
	s.oneshot_runs = calloc(total, sizeof(*s.oneshot_runs));
	assert_non_null(s.oneshot_runs);
	for (i = 0; i < NR_PRODUCERS; i++) {
		assert_int_equal(pthread_create(&s.p[i].tid, NULL, oneshot_thread, &s.p[i]), 0);
	}
	owner_loop(&s, &s.total_ran, total);
	for (i = 0; i < NR_PRODUCERS; i++) {
		pthread_join(s.p[i].tid, NULL);
	}
	if (atomic_load(&s.wd.fired)) {
		report_lost(&s, "one-shot burst");
	}
	assert_false(aio_poll(s.ctx, false));
	for (i = 0; i < total; i++) {
		if (atomic_load(&s.oneshot_runs[i]) != 1) {
			fail_msg("one-shot %d ran %d times", i, atomic_load(&s.oneshot_runs[i]));
		}
	}
	assert_int_equal(atomic_load(&s.total_ran), total);
	free(s.oneshot_runs);
	stress_fini(&s);
}

static void shared_cb(void *opaque)
{
	struct stress *s = opaque;

	/* Every ticket taken before its holder's schedule is ours now. */
	atomic_store(&s->handled, atomic_load(&s->requests));
	atomic_fetch_add(&s->shared_runs, 1);
}

static void *shared_thread(void *opaque)
{
	struct producer *p = opaque;
	struct stress *s = p->s;
	int i;

	for (i = 1; i <= ROUNDS && !atomic_load(&s->abort); i++) {
		int ticket = atomic_fetch_add(&s->requests, 1) + 1;

		jitter(p);
		aio_bh_schedule(s->shared_bh); /* often already scheduled: a no-op */
		atomic_store(&p->sent, i);
		wait_at_least(&s->handled, ticket, &s->abort);
		atomic_store(&p->ran, i);
	}
	return NULL;
}

static void test_stress_shared_bh(void **state)
{
	struct stress s;
	int i, total = NR_PRODUCERS * ROUNDS;

	(void)state;
	stress_init(&s);
	s.shared_bh = aio_bh_new(s.ctx, shared_cb, &s);
	assert_non_null(s.shared_bh);
	for (i = 0; i < NR_PRODUCERS; i++) {
		assert_int_equal(pthread_create(&s.p[i].tid, NULL, shared_thread, &s.p[i]), 0);
	}
	owner_loop(&s, &s.handled, total);
	for (i = 0; i < NR_PRODUCERS; i++) {
		pthread_join(s.p[i].tid, NULL);
	}
	if (atomic_load(&s.wd.fired)) {
		report_lost(&s, "shared BH");
	}
	assert_int_equal(atomic_load(&s.handled), total);
	/* Coalescing: never more runs than schedules. */
	assert_true(atomic_load(&s.shared_runs) <= total);
	assert_true(atomic_load(&s.shared_runs) >= 1);
	aio_poll(s.ctx, false); /* a last coalesced schedule may still be pending */
	assert_false(aio_poll(s.ctx, false));
	aio_bh_delete(s.shared_bh);
	stress_fini(&s);
}

static void *notify_thread(void *opaque)
{
	struct producer *p = opaque;
	int i;

	for (i = 1; i <= ROUNDS && !atomic_load(&p->s->abort); i++) {
		jitter(p);
		atomic_store(&p->sent, i); /* the request; aio_notify carries no data */
		aio_notify(p->s->ctx);
		wait_at_least(&p->ran, i, &p->s->abort);
	}
	return NULL;
}

/*
 * Bare aio_notify, no BH: here the BH list cannot make up for a lost
 * `notified` (the owner's BH scan would find nothing), so this is the
 * test for the clear-notified-too-late race ([A1]).
 */
static void test_stress_bare_notify(void **state)
{
	struct stress s;
	int i, acked = 0, total = NR_PRODUCERS * ROUNDS;

	(void)state;
	stress_init(&s);
	for (i = 0; i < NR_PRODUCERS; i++) {
		assert_int_equal(pthread_create(&s.p[i].tid, NULL, notify_thread, &s.p[i]), 0);
	}
	while (acked < total && !atomic_load(&s.wd.fired)) {
		bool progress;

		aio_test_preempt(); /* between checking for work and sleeping */
		progress = aio_poll(s.ctx, true);

		/* A notify is not progress (the watchdog's fd handler is). */
		assert_true(!progress || atomic_load(&s.wd.fired));
		for (acked = 0, i = 0; i < NR_PRODUCERS; i++) {
			atomic_store(&s.p[i].ran, atomic_load(&s.p[i].sent));
			acked += atomic_load(&s.p[i].ran);
		}
	}
	atomic_store(&s.abort, atomic_load(&s.wd.fired));
	for (i = 0; i < NR_PRODUCERS; i++) {
		pthread_join(s.p[i].tid, NULL);
	}
	if (atomic_load(&s.wd.fired)) {
		report_lost(&s, "bare notify");
	}
	assert_int_equal(acked, total);
	stress_fini(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stress_pingpong),
	    cmocka_unit_test(test_stress_oneshot_burst),
	    cmocka_unit_test(test_stress_shared_bh),
	    cmocka_unit_test(test_stress_bare_notify),
	};

	aio_test_init(120);
	aio_test_preempt_hook = aio_test_preempt;
	return cmocka_run_group_tests_name("aio_stress", tests, NULL, NULL);
}
