/* SPDX-License-Identifier: MIT */
/*
 * aio thread pool (completion, many requests, cancel, idle exit, free with
 * work outstanding) and iothreads (start/stop, BHs and a pool in an
 * iothread's context). Callbacks count; worker-side functions only record
 * into atomics, and all assertions run on the test thread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "aio/aio.h"
#include "tests/unit/aio_test_util.h"

struct job {
	int value;	  /* returned by the work */
	atomic_bool gate; /* work waits for this if `gated` */
	bool gated;
	atomic_int started;    /* work began */
	atomic_int work_runs;  /* work finished */
	pthread_t work_thread; /* written by the work, read after completion */
	int done_runs;	       /* completion ran (owner thread) */
	int done_ret;
	pthread_t done_thread;
	struct thread_pool_req *req;
};

static int job_work(void *arg)
{
	struct job *j = arg;

	j->work_thread = pthread_self();
	atomic_fetch_add(&j->started, 1);
	while (j->gated && !atomic_load(&j->gate)) {
		sleep_ns(100000);
	}
	atomic_fetch_add(&j->work_runs, 1);
	return j->value;
}

static void job_done(void *opaque, int ret)
{
	struct job *j = opaque;

	j->done_runs++;
	j->done_ret = ret;
	j->done_thread = pthread_self();
}

/* Poll (blocking) until *n >= target. */
static void poll_until(struct aio_context *ctx, int *n, int target)
{
	while (*n < target) {
		aio_poll(ctx, true);
	}
}

static void test_pool_completion(void **state)
{
	struct aio_context *ctx = *state;
	struct thread_pool *pool;
	struct job j = {.value = 42};

	assert_int_equal(thread_pool_new(ctx, 2, &pool), 0);
	assert_int_equal(thread_pool_nr_threads(pool), 0); /* lazy */
	j.req = thread_pool_submit(pool, job_work, &j, job_done, &j);
	assert_non_null(j.req);
	assert_int_equal(j.done_runs, 0); /* never synchronous */
	assert_int_equal(thread_pool_nr_threads(pool), 1);

	poll_until(ctx, &j.done_runs, 1);
	assert_int_equal(j.done_runs, 1);
	assert_int_equal(j.done_ret, 42);
	assert_int_equal(atomic_load(&j.work_runs), 1);
	assert_false(pthread_equal(j.work_thread, pthread_self())); /* on a worker */
	assert_true(pthread_equal(j.done_thread, pthread_self()));  /* in our context */
	assert_false(aio_poll(ctx, false));
	assert_int_equal(j.done_runs, 1);
	thread_pool_free(pool);
	assert_int_equal(j.done_runs, 1);
}

static void test_pool_many(void **state)
{
	struct aio_context *ctx = *state;
	struct thread_pool *pool;
	struct job jobs[40] = {{0}};
	int i, done = 0;

	assert_int_equal(thread_pool_new(ctx, 3, &pool), 0);
	for (i = 0; i < 40; i++) {
		jobs[i].value = i;
		assert_non_null(thread_pool_submit(pool, job_work, &jobs[i], job_done, &jobs[i]));
		assert_true(thread_pool_nr_threads(pool) <= 3);
	}
	while (done < 40) {
		aio_poll(ctx, true);
		for (done = 0, i = 0; i < 40; i++) {
			done += jobs[i].done_runs;
		}
	}
	for (i = 0; i < 40; i++) {
		assert_int_equal(jobs[i].done_runs, 1);
		assert_int_equal(jobs[i].done_ret, i);
		assert_int_equal(atomic_load(&jobs[i].work_runs), 1);
	}
	assert_true(thread_pool_nr_threads(pool) <= 3);
	assert_false(aio_poll(ctx, false));
	thread_pool_free(pool);
}

static void test_pool_cancel(void **state)
{
	struct aio_context *ctx = *state;
	struct thread_pool *pool;
	struct job blocker = {.value = 1, .gated = true};
	struct job queued = {.value = 2};

	assert_int_equal(thread_pool_new(ctx, 1, &pool), 0);
	blocker.req = thread_pool_submit(pool, job_work, &blocker, job_done, &blocker);
	queued.req = thread_pool_submit(pool, job_work, &queued, job_done, &queued);
	assert_non_null(blocker.req);
	assert_non_null(queued.req);
	wait_at_least(&blocker.started, 1, NULL); /* the only worker is busy */

	assert_false(thread_pool_cancel(blocker.req)); /* started: runs normally */
	assert_true(thread_pool_cancel(queued.req));   /* not started: never runs */
	assert_int_equal(queued.done_runs, 0);	       /* completion is a BH */
	assert_true(aio_poll(ctx, false));
	assert_int_equal(queued.done_runs, 1);
	assert_int_equal(queued.done_ret, -ECANCELED);
	assert_true(pthread_equal(queued.done_thread, pthread_self()));
	assert_int_equal(blocker.done_runs, 0);

	atomic_store(&blocker.gate, true);
	poll_until(ctx, &blocker.done_runs, 1);
	assert_int_equal(blocker.done_runs, 1);
	assert_int_equal(blocker.done_ret, 1);
	assert_false(aio_poll(ctx, false));
	assert_int_equal(queued.done_runs, 1);
	assert_int_equal(atomic_load(&queued.started), 0);
	assert_int_equal(atomic_load(&queued.work_runs), 0);
	thread_pool_free(pool);
}

static void test_pool_idle_exit(void **state)
{
	struct aio_context *ctx = *state;
	struct thread_pool *pool;
	struct job a = {.value = 5}, b = {.value = 6};

	assert_int_equal(thread_pool_new(ctx, 2, &pool), 0);
	thread_pool_set_idle_ns(pool, 1000000);
	assert_non_null(thread_pool_submit(pool, job_work, &a, job_done, &a));
	poll_until(ctx, &a.done_runs, 1);
	assert_int_equal(a.done_ret, 5);

	/* The idle worker exits on its own (no timing asserted, only that it does). */
	while (thread_pool_nr_threads(pool) > 0) {
		sleep_ns(1000000);
	}
	assert_int_equal(thread_pool_nr_threads(pool), 0);

	/* A new submit starts a worker again (and joins the exited one). */
	assert_non_null(thread_pool_submit(pool, job_work, &b, job_done, &b));
	assert_int_equal(b.done_runs, 0);
	poll_until(ctx, &b.done_runs, 1);
	assert_int_equal(b.done_ret, 6);
	assert_int_equal(a.done_runs, 1);
	thread_pool_free(pool);
}

struct releaser {
	struct job *j;
	int64_t delay_ns;
};

static void *release_thread(void *opaque)
{
	struct releaser *r = opaque;

	sleep_ns(r->delay_ns);
	atomic_store(&r->j->gate, true);
	return NULL;
}

static void test_pool_free_with_work_outstanding(void **state)
{
	struct aio_context *ctx = *state;
	struct thread_pool *pool;
	struct job running = {.value = 7, .gated = true};
	struct job q1 = {.value = 8}, q2 = {.value = 9};
	struct releaser r = {.j = &running, .delay_ns = 5000000};
	pthread_t t;

	assert_int_equal(thread_pool_new(ctx, 1, &pool), 0);
	assert_non_null(thread_pool_submit(pool, job_work, &running, job_done, &running));
	assert_non_null(thread_pool_submit(pool, job_work, &q1, job_done, &q1));
	assert_non_null(thread_pool_submit(pool, job_work, &q2, job_done, &q2));
	wait_at_least(&running.started, 1, NULL);
	assert_int_equal(pthread_create(&t, NULL, release_thread, &r), 0);

	/* Waits for the running work; cancels the queued; runs all completions. */
	thread_pool_free(pool);
	assert_int_equal(running.done_runs, 1);
	assert_int_equal(running.done_ret, 7);
	assert_int_equal(q1.done_runs, 1);
	assert_int_equal(q1.done_ret, -ECANCELED);
	assert_int_equal(q2.done_runs, 1);
	assert_int_equal(q2.done_ret, -ECANCELED);
	assert_int_equal(atomic_load(&q1.work_runs) + atomic_load(&q2.work_runs), 0);
	pthread_join(t, NULL);
	assert_false(aio_poll(ctx, false)); /* the deleted completion BH stays quiet */
}

/* Iothreads */

struct io_counter {
	atomic_int n;
	pthread_t thread;
	struct aio_bh *bh;
};

static void io_count_cb(void *opaque)
{
	struct io_counter *c = opaque;

	c->thread = pthread_self();
	atomic_fetch_add(&c->n, 1); /* publishes c->thread (seq_cst) */
}

static void delete_bh_cb(void *opaque)
{
	aio_bh_delete(opaque);
}

static void test_iothread_start_stop(void **state)
{
	struct iothread *it;
	struct aio_context *ctx;
	struct io_counter c = {0};

	(void)state;
	assert_int_equal(iothread_new("test-io", &it), 0);
	ctx = iothread_get_aio_context(it);
	assert_non_null(ctx);
	c.bh = aio_bh_new(ctx, io_count_cb, &c);
	assert_non_null(c.bh);

	assert_int_equal(atomic_load(&c.n), 0);
	aio_bh_schedule(c.bh); /* from this thread into the iothread */
	wait_at_least(&c.n, 1, NULL);
	assert_int_equal(atomic_load(&c.n), 1);
	assert_false(pthread_equal(c.thread, pthread_self()));
	aio_bh_schedule(c.bh);
	wait_at_least(&c.n, 2, NULL);
	assert_int_equal(atomic_load(&c.n), 2);

	/* Deleting is for the owner: do it in the iothread with a one-shot. */
	assert_int_equal(aio_bh_schedule_oneshot(ctx, delete_bh_cb, c.bh), 0);
	/* Stops a thread that sleeps in aio_poll with no deadline, and joins it. */
	iothread_destroy(it);
	assert_int_equal(atomic_load(&c.n), 2);
}

static void test_iothread_idle_destroy(void **state)
{
	struct iothread *it;

	(void)state;
	assert_int_equal(iothread_new(NULL, &it), 0);
	iothread_destroy(it); /* maybe before it even polled once */
	assert_int_equal(iothread_new("x", &it), 0);
	sleep_ns(2000000);
	iothread_destroy(it);
}

struct io_pool {
	struct aio_context *ctx;
	struct thread_pool *pool;
	struct job j;
	atomic_int stage; /* 1 submitted, 2 completed, 3 freed */
};

static void io_pool_done(void *opaque, int ret)
{
	struct io_pool *s = opaque;

	s->j.done_ret = ret;
	s->j.done_thread = pthread_self();
	atomic_store(&s->stage, 2);
}

static void io_pool_submit_bh(void *opaque)
{
	struct io_pool *s = opaque;

	s->j.req = thread_pool_submit(s->pool, job_work, &s->j, io_pool_done, s);
	atomic_store(&s->stage, s->j.req ? 1 : -1);
}

static void io_pool_free_bh(void *opaque)
{
	struct io_pool *s = opaque;

	thread_pool_free(s->pool);
	atomic_store(&s->stage, 3);
}

static void test_iothread_thread_pool(void **state)
{
	struct iothread *it;
	struct io_pool s = {.j = {.value = 11}};

	(void)state;
	assert_int_equal(iothread_new("io-pool", &it), 0);
	s.ctx = iothread_get_aio_context(it);
	assert_int_equal(thread_pool_new(s.ctx, 1, &s.pool), 0);

	/* Submit and free run in the iothread, the pool's owner. */
	assert_int_equal(aio_bh_schedule_oneshot(s.ctx, io_pool_submit_bh, &s), 0);
	wait_at_least(&s.stage, 2, NULL);
	assert_int_equal(atomic_load(&s.stage), 2);
	assert_int_equal(s.j.done_ret, 11);
	assert_false(pthread_equal(s.j.done_thread, pthread_self()));
	assert_false(pthread_equal(s.j.done_thread, s.j.work_thread));
	assert_int_equal(aio_bh_schedule_oneshot(s.ctx, io_pool_free_bh, &s), 0);
	wait_at_least(&s.stage, 3, NULL);
	assert_int_equal(atomic_load(&s.stage), 3);
	iothread_destroy(it);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_pool_completion, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_pool_many, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_pool_cancel, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_pool_idle_exit, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_pool_free_with_work_outstanding,
					    aio_test_setup_ctx, aio_test_teardown_ctx),
	    cmocka_unit_test(test_iothread_start_stop),
	    cmocka_unit_test(test_iothread_idle_destroy),
	    cmocka_unit_test(test_iothread_thread_pool),
	};

	aio_test_init(60);
	return cmocka_run_group_tests_name("aio_pool", tests, NULL, NULL);
}
