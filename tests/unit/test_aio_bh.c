/* SPDX-License-Identifier: MIT */
/*
 * aio bottom halves: schedule, order, cancel, delete (also from the
 * callback), one-shot, idle, nested aio_poll, aio_notify and the leak
 * report of aio_context_free. Counting callbacks; the state is asserted
 * before and after every aio_poll.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "aio/aio.h"
#include "tests/unit/aio_test_util.h"

struct counter {
	atomic_int n;
	pthread_t thread; /* who ran the callback last */
	struct aio_bh *bh;
	struct aio_context *ctx;
	int *log;
	int *log_len;
	int id;
};

static void count_cb(void *opaque)
{
	struct counter *c = opaque;

	c->thread = pthread_self();
	if (c->log) {
		c->log[(*c->log_len)++] = c->id;
	}
	atomic_fetch_add(&c->n, 1);
}

static void test_bh_schedule(void **state)
{
	struct aio_context *ctx = *state;
	struct counter c = {0};
	struct aio_bh *bh = aio_bh_new(ctx, count_cb, &c);

	assert_non_null(bh);
	assert_false(aio_poll(ctx, false));
	assert_int_equal(atomic_load(&c.n), 0);

	aio_bh_schedule(bh);
	assert_int_equal(atomic_load(&c.n), 0); /* never synchronous */
	assert_true(aio_poll(ctx, false));
	assert_int_equal(atomic_load(&c.n), 1);
	assert_true(pthread_equal(c.thread, pthread_self()));
	assert_false(aio_poll(ctx, false));
	assert_int_equal(atomic_load(&c.n), 1);

	/* Scheduling a scheduled BH is a no-op: one run. */
	aio_bh_schedule(bh);
	aio_bh_schedule(bh);
	assert_int_equal(atomic_load(&c.n), 1);
	assert_true(aio_poll(ctx, true)); /* a scheduled BH: must not sleep */
	assert_int_equal(atomic_load(&c.n), 2);
	assert_false(aio_poll(ctx, false));
	assert_int_equal(atomic_load(&c.n), 2);

	aio_bh_delete(bh);
	assert_false(aio_poll(ctx, false));
	assert_int_equal(atomic_load(&c.n), 2);
}

static void test_bh_order(void **state)
{
	struct aio_context *ctx = *state;
	int log[8], len = 0;
	struct counter c[3] = {0};
	struct aio_bh *bh[3];
	int i;

	for (i = 0; i < 3; i++) {
		c[i].id = i;
		c[i].log = log;
		c[i].log_len = &len;
		bh[i] = aio_bh_new(ctx, count_cb, &c[i]);
		assert_non_null(bh[i]);
	}
	aio_bh_schedule(bh[2]);
	aio_bh_schedule(bh[0]);
	aio_bh_schedule(bh[1]);
	assert_int_equal(len, 0);
	assert_true(aio_poll(ctx, false));
	assert_int_equal(len, 3);
	assert_int_equal(log[0], 2); /* in scheduling order */
	assert_int_equal(log[1], 0);
	assert_int_equal(log[2], 1);
	assert_false(aio_poll(ctx, false));
	assert_int_equal(len, 3);
	for (i = 0; i < 3; i++) {
		aio_bh_delete(bh[i]);
	}
}

static void test_bh_cancel(void **state)
{
	struct aio_context *ctx = *state;
	struct counter c = {0};
	struct aio_bh *bh = aio_bh_new(ctx, count_cb, &c);

	assert_non_null(bh);
	aio_bh_cancel(bh); /* not scheduled: no-op */
	aio_bh_schedule(bh);
	aio_bh_cancel(bh);
	assert_int_equal(atomic_load(&c.n), 0);
	assert_false(aio_poll(ctx, false));
	assert_int_equal(atomic_load(&c.n), 0);

	/* Schedulable again after a cancel, also while still pending. */
	aio_bh_schedule(bh);
	aio_bh_cancel(bh);
	aio_bh_schedule(bh);
	assert_int_equal(atomic_load(&c.n), 0);
	assert_true(aio_poll(ctx, false));
	assert_int_equal(atomic_load(&c.n), 1);
	assert_false(aio_poll(ctx, false));
	assert_int_equal(atomic_load(&c.n), 1);
	aio_bh_delete(bh);
}

static void delete_self_cb(void *opaque)
{
	struct counter *c = opaque;

	atomic_fetch_add(&c->n, 1);
	aio_bh_schedule(c->bh); /* a pending schedule must not survive the delete */
	aio_bh_delete(c->bh);
}

static void test_bh_delete_from_callback(void **state)
{
	struct aio_context *ctx = *state;
	struct counter c = {0};

	c.bh = aio_bh_new(ctx, delete_self_cb, &c);
	assert_non_null(c.bh);
	aio_bh_schedule(c.bh);
	assert_int_equal(atomic_load(&c.n), 0);
	assert_true(aio_poll(ctx, false));
	assert_int_equal(atomic_load(&c.n), 1);
	/* The BH is freed by this poll (ASan checks), and does not run. */
	assert_false(aio_poll(ctx, false));
	assert_int_equal(atomic_load(&c.n), 1);
	assert_false(aio_poll(ctx, false));
	assert_int_equal(atomic_load(&c.n), 1);
}

static void test_bh_delete_scheduled(void **state)
{
	struct aio_context *ctx = *state;
	struct counter c = {0};
	struct aio_bh *bh = aio_bh_new(ctx, count_cb, &c);

	assert_non_null(bh);
	aio_bh_schedule(bh);
	aio_bh_delete(bh);
	assert_int_equal(atomic_load(&c.n), 0);
	assert_false(aio_poll(ctx, false));
	assert_int_equal(atomic_load(&c.n), 0);
}

static void resched_cb(void *opaque)
{
	struct counter *c = opaque;

	atomic_fetch_add(&c->n, 1);
	aio_bh_schedule(c->bh);
}

static void test_bh_reschedule_from_callback(void **state)
{
	struct aio_context *ctx = *state;
	struct counter c = {0};
	int i;

	c.bh = aio_bh_new(ctx, resched_cb, &c);
	assert_non_null(c.bh);
	aio_bh_schedule(c.bh);
	for (i = 1; i <= 3; i++) {
		/* Runs once per poll: the new schedule is for the next one. */
		assert_int_equal(atomic_load(&c.n), i - 1);
		assert_true(aio_poll(ctx, true));
		assert_int_equal(atomic_load(&c.n), i);
	}
	aio_bh_cancel(c.bh);
	assert_false(aio_poll(ctx, false));
	assert_int_equal(atomic_load(&c.n), 3);
	aio_bh_delete(c.bh);
}

static void test_bh_oneshot(void **state)
{
	struct aio_context *ctx = *state;
	struct counter c = {0};

	assert_int_equal(aio_bh_schedule_oneshot(ctx, count_cb, &c), 0);
	assert_int_equal(aio_bh_schedule_oneshot(ctx, count_cb, &c), 0);
	assert_int_equal(atomic_load(&c.n), 0);
	assert_true(aio_poll(ctx, false));
	assert_int_equal(atomic_load(&c.n), 2); /* two BHs, each once */
	assert_false(aio_poll(ctx, false));
	assert_int_equal(atomic_load(&c.n), 2);
}

static void test_bh_idle(void **state)
{
	struct aio_context *ctx = *state;
	struct counter c = {0};
	struct aio_bh *bh = aio_bh_new(ctx, count_cb, &c);

	assert_non_null(bh);
	aio_bh_schedule_idle(bh);
	assert_int_equal(atomic_load(&c.n), 0);
	assert_false(aio_poll(ctx, false)); /* runs, but is not progress */
	assert_int_equal(atomic_load(&c.n), 1);

	/* Nothing else to wait for: the idle BH bounds the sleep (no hang). */
	aio_bh_schedule_idle(bh);
	assert_int_equal(atomic_load(&c.n), 1);
	while (atomic_load(&c.n) < 2) {
		aio_poll(ctx, true);
	}
	assert_int_equal(atomic_load(&c.n), 2);
	assert_false(aio_poll(ctx, false));
	assert_int_equal(atomic_load(&c.n), 2);
	aio_bh_delete(bh);
}

struct remote {
	struct aio_bh *bh;
	struct aio_context *ctx;
	int64_t delay_ns;
	int what; /* 0 schedule, 1 schedule_idle, 2 notify */
};

static void *remote_thread(void *opaque)
{
	struct remote *r = opaque;

	sleep_ns(r->delay_ns);
	if (r->what == 0) {
		aio_bh_schedule(r->bh);
	} else if (r->what == 1) {
		aio_bh_schedule_idle(r->bh);
	} else {
		aio_notify(r->ctx);
	}
	return NULL;
}

static void test_bh_idle_from_other_thread(void **state)
{
	struct aio_context *ctx = *state;
	struct counter c = {0};
	struct remote r = {.ctx = ctx, .delay_ns = 2000000, .what = 1};
	pthread_t t;

	r.bh = aio_bh_new(ctx, count_cb, &c);
	assert_non_null(r.bh);
	assert_int_equal(pthread_create(&t, NULL, remote_thread, &r), 0);
	/* Sleeps without deadline: the idle schedule must cut that short. */
	while (atomic_load(&c.n) == 0) {
		aio_poll(ctx, true);
	}
	assert_int_equal(atomic_load(&c.n), 1);
	pthread_join(t, NULL);
	assert_false(aio_poll(ctx, false));
	assert_int_equal(atomic_load(&c.n), 1);
	aio_bh_delete(r.bh);
}

static void test_bh_schedule_from_other_thread(void **state)
{
	struct aio_context *ctx = *state;
	struct counter c = {0};
	struct remote r = {.ctx = ctx, .delay_ns = 2000000, .what = 0};
	pthread_t t;

	r.bh = aio_bh_new(ctx, count_cb, &c);
	assert_non_null(r.bh);
	assert_int_equal(pthread_create(&t, NULL, remote_thread, &r), 0);
	assert_int_equal(atomic_load(&c.n), 0);
	while (!aio_poll(ctx, true)) {
		/* only a spurious wakeup returns without progress */
	}
	assert_int_equal(atomic_load(&c.n), 1);
	assert_true(pthread_equal(c.thread, pthread_self()));
	pthread_join(t, NULL);
	assert_false(aio_poll(ctx, false));
	assert_int_equal(atomic_load(&c.n), 1);
	aio_bh_delete(r.bh);
}

static void test_notify(void **state)
{
	struct aio_context *ctx = *state;
	struct remote r = {.ctx = ctx, .delay_ns = 2000000, .what = 2};
	pthread_t t;

	/* A notify while nobody sleeps is remembered by the next poll. */
	aio_notify(ctx);
	assert_false(aio_poll(ctx, true)); /* returns at once, no progress */
	assert_false(aio_poll(ctx, false));

	/* A notify from another thread wakes a sleeping poll. */
	assert_int_equal(pthread_create(&t, NULL, remote_thread, &r), 0);
	assert_false(aio_poll(ctx, true));
	pthread_join(t, NULL);
	assert_false(aio_poll(ctx, false));
}

struct nest {
	struct aio_context *ctx;
	struct counter inner; /* scheduled before the nesting BH runs */
	struct counter late;  /* scheduled from inside the nesting callback */
	struct aio_bh *inner_bh, *late_bh;
	atomic_int outer_runs;
	int inner_seen_in_nested; /* inner.n as seen after the nested poll */
	int late_seen_in_nested;
	bool nested_ret;
};

static void nest_outer_cb(void *opaque)
{
	struct nest *s = opaque;

	atomic_fetch_add(&s->outer_runs, 1);
	aio_bh_schedule(s->late_bh);
	/* Both the rest of our slice (inner) and the new BH must run here. */
	s->nested_ret = aio_poll(s->ctx, true);
	s->inner_seen_in_nested = atomic_load(&s->inner.n);
	s->late_seen_in_nested = atomic_load(&s->late.n);
}

static void test_nested_poll(void **state)
{
	struct aio_context *ctx = *state;
	struct nest s = {.ctx = ctx};
	struct aio_bh *outer = aio_bh_new(ctx, nest_outer_cb, &s);

	s.inner_bh = aio_bh_new(ctx, count_cb, &s.inner);
	s.late_bh = aio_bh_new(ctx, count_cb, &s.late);
	assert_non_null(outer);
	assert_non_null(s.inner_bh);
	assert_non_null(s.late_bh);

	aio_bh_schedule(outer);
	aio_bh_schedule(s.inner_bh); /* same slice, after outer */
	assert_int_equal(atomic_load(&s.outer_runs), 0);
	assert_true(aio_poll(ctx, false));
	assert_int_equal(atomic_load(&s.outer_runs), 1);
	assert_true(s.nested_ret);
	assert_int_equal(s.inner_seen_in_nested, 1);
	assert_int_equal(s.late_seen_in_nested, 1);
	/* Nothing runs twice after the nested poll returned. */
	assert_int_equal(atomic_load(&s.inner.n), 1);
	assert_int_equal(atomic_load(&s.late.n), 1);
	assert_false(aio_poll(ctx, false));
	assert_int_equal(atomic_load(&s.outer_runs), 1);
	assert_int_equal(atomic_load(&s.inner.n), 1);
	assert_int_equal(atomic_load(&s.late.n), 1);

	aio_bh_delete(outer);
	aio_bh_delete(s.inner_bh);
	aio_bh_delete(s.late_bh);
}

struct nest_remote {
	struct aio_context *ctx;
	struct remote r;
	struct counter woke;
	pthread_t t;
	bool progress;
};

static void nest_remote_cb(void *opaque)
{
	struct nest_remote *s = opaque;

	/* A nested blocking poll is woken by another thread's schedule. */
	assert_int_equal(pthread_create(&s->t, NULL, remote_thread, &s->r), 0);
	while (atomic_load(&s->woke.n) == 0) {
		s->progress |= aio_poll(s->ctx, true);
	}
	pthread_join(s->t, NULL);
}

static void test_nested_poll_woken_by_thread(void **state)
{
	struct aio_context *ctx = *state;
	struct nest_remote s = {.ctx = ctx, .r = {.ctx = ctx, .delay_ns = 2000000}};
	struct aio_bh *outer = aio_bh_new(ctx, nest_remote_cb, &s);

	s.r.bh = aio_bh_new(ctx, count_cb, &s.woke);
	assert_non_null(outer);
	assert_non_null(s.r.bh);
	aio_bh_schedule(outer);
	assert_int_equal(atomic_load(&s.woke.n), 0);
	assert_true(aio_poll(ctx, false));
	assert_int_equal(atomic_load(&s.woke.n), 1);
	assert_true(s.progress);
	assert_false(aio_poll(ctx, false));
	assert_int_equal(atomic_load(&s.woke.n), 1);
	aio_bh_delete(outer);
	aio_bh_delete(s.r.bh);
}

/* Runs @ctx's aio_context_free with stderr captured into @buf. */
static int free_capturing_stderr(struct aio_context *ctx, char *buf, size_t len)
{
	FILE *tmp = tmpfile();
	int saved = dup(2);
	int leaks;
	size_t n;

	assert_non_null(tmp);
	assert_true(saved >= 0);
	fflush(stderr);
	assert_true(dup2(fileno(tmp), 2) >= 0);
	leaks = aio_context_free(ctx);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	n = fread(buf, 1, len - 1, tmp);
	buf[n] = '\0';
	fclose(tmp);
	return leaks;
}

static void leaky_cb(void *opaque)
{
	fail_msg("leaked BH must not run");
}

static void deleted_cb(void *opaque)
{
	fail_msg("deleted BH must not run");
}

static void test_leak_check(void **state)
{
	struct aio_context *ctx;
	struct aio_bh *deleted, *leaky, *idle;
	char out[1024];

	(void)state;
	assert_int_equal(aio_context_new(&ctx), 0);
	leaky = aio_bh_new(ctx, leaky_cb, NULL);
	deleted = aio_bh_new(ctx, deleted_cb, NULL);
	idle = aio_bh_new(ctx, count_cb, NULL); /* never scheduled, never deleted */
	assert_non_null(leaky);
	assert_non_null(deleted);
	assert_non_null(idle);
	aio_bh_schedule(leaky);
	aio_bh_schedule(deleted);
	aio_bh_delete(deleted);
	assert_int_equal(aio_bh_schedule_oneshot(ctx, leaky_cb, NULL), 0);

	/* Two scheduled BHs leak (the persistent and the one-shot). */
	assert_int_equal(free_capturing_stderr(ctx, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "BH 'leaky_cb' still scheduled"));
	assert_non_null(strstr(out, "one-shot BH 'leaky_cb' still scheduled"));
	assert_non_null(strstr(out, "BH 'count_cb' never deleted"));
	assert_null(strstr(out, "deleted_cb"));
}

static void test_leak_check_clean(void **state)
{
	struct aio_context *ctx;
	struct counter c = {0};
	struct aio_bh *bh;
	char out[256];

	(void)state;
	assert_int_equal(aio_context_new(&ctx), 0);
	bh = aio_bh_new(ctx, count_cb, &c);
	assert_non_null(bh);
	aio_bh_schedule(bh);
	aio_bh_delete(bh); /* deleted while pending: freed by the context */
	assert_int_equal(free_capturing_stderr(ctx, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(atomic_load(&c.n), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_bh_schedule, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_bh_order, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_bh_cancel, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_bh_delete_from_callback, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_bh_delete_scheduled, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_bh_reschedule_from_callback, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_bh_oneshot, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_bh_idle, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_bh_idle_from_other_thread, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_bh_schedule_from_other_thread, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_notify, aio_test_setup_ctx, aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_nested_poll, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_nested_poll_woken_by_thread, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test(test_leak_check),
	    cmocka_unit_test(test_leak_check_clean),
	};

	aio_test_init(60);
	return cmocka_run_group_tests_name("aio_bh", tests, NULL, NULL);
}
