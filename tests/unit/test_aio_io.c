/* SPDX-License-Identifier: MIT */
/*
 * aio fd handlers (epoll) and timers. Counting callbacks; the state is
 * asserted before and after every aio_poll. No assertion is about time:
 * a blocking poll that never wakes is caught by the hang guard instead.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <fcntl.h>

#include "aio/aio.h"
#include "tests/unit/aio_test_util.h"

static void make_pipe(int fds[2])
{
	assert_int_equal(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
}

static void put_byte(int fd)
{
	assert_int_equal(write(fd, "x", 1), 1);
}

struct fdh {
	struct aio_context *ctx;
	int fd;
	int reads, writes; /* callback counts */
	int consume;	   /* read one byte per call */
	struct fdh *other; /* for removal tests */
	bool remove_self, remove_other, nest;
	bool nested_ret;
};

static void fd_read_cb(void *opaque)
{
	struct fdh *h = opaque;
	char c;

	h->reads++;
	if (h->consume) {
		assert_int_equal(read(h->fd, &c, 1), 1);
	}
	if (h->remove_other) {
		aio_set_fd_handler(h->ctx, h->other->fd, NULL, NULL, NULL);
	}
	if (h->remove_self) {
		aio_set_fd_handler(h->ctx, h->fd, NULL, NULL, NULL);
	}
	if (h->nest) {
		h->nested_ret = aio_poll(h->ctx, false);
	}
}

static void fd_write_cb(void *opaque)
{
	struct fdh *h = opaque;

	h->writes++;
	if (h->remove_self) {
		aio_set_fd_handler(h->ctx, h->fd, NULL, NULL, NULL);
	}
}

static void test_fd_read(void **state)
{
	struct aio_context *ctx = *state;
	int p[2];
	struct fdh h = {.ctx = ctx, .consume = 1};

	make_pipe(p);
	h.fd = p[0];
	assert_int_equal(aio_set_fd_handler(ctx, p[0], fd_read_cb, NULL, &h), 0);
	assert_false(aio_poll(ctx, false));
	assert_int_equal(h.reads, 0);

	put_byte(p[1]);
	assert_int_equal(h.reads, 0);
	assert_true(aio_poll(ctx, false));
	assert_int_equal(h.reads, 1);
	assert_false(aio_poll(ctx, false)); /* consumed: level-triggered, quiet */
	assert_int_equal(h.reads, 1);

	put_byte(p[1]);
	assert_true(aio_poll(ctx, true));
	assert_int_equal(h.reads, 2);

	/* Hang-up counts as readable. */
	close(p[1]);
	h.consume = 0;
	assert_true(aio_poll(ctx, true));
	assert_int_equal(h.reads, 3);

	assert_int_equal(aio_set_fd_handler(ctx, p[0], NULL, NULL, NULL), 0);
	assert_false(aio_poll(ctx, false));
	assert_int_equal(h.reads, 3);
	close(p[0]);
}

static void test_fd_write(void **state)
{
	struct aio_context *ctx = *state;
	int p[2];
	struct fdh h = {.ctx = ctx};

	make_pipe(p);
	h.fd = p[1];
	assert_int_equal(aio_set_fd_handler(ctx, p[1], NULL, fd_write_cb, &h), 0);
	assert_int_equal(h.writes, 0);
	assert_true(aio_poll(ctx, false)); /* an empty pipe is writable */
	assert_int_equal(h.writes, 1);
	assert_true(aio_poll(ctx, true));
	assert_int_equal(h.writes, 2);

	/* Switching to read-only: the write callback stops. */
	assert_int_equal(aio_set_fd_handler(ctx, p[1], fd_read_cb, NULL, &h), 0);
	assert_false(aio_poll(ctx, false));
	assert_int_equal(h.writes, 2);
	assert_int_equal(h.reads, 0);

	assert_int_equal(aio_set_fd_handler(ctx, p[1], NULL, NULL, NULL), 0);
	assert_false(aio_poll(ctx, false));
	assert_int_equal(h.writes, 2);
	close(p[0]);
	close(p[1]);
}

static void test_fd_remove_from_callback(void **state)
{
	struct aio_context *ctx = *state;
	int a[2], b[2];
	struct fdh ha = {.ctx = ctx, .remove_self = true, .remove_other = true};
	struct fdh hb = {.ctx = ctx, .remove_self = true, .remove_other = true};

	make_pipe(a);
	make_pipe(b);
	ha.fd = a[0];
	hb.fd = b[0];
	ha.other = &hb;
	hb.other = &ha;
	assert_int_equal(aio_set_fd_handler(ctx, a[0], fd_read_cb, NULL, &ha), 0);
	assert_int_equal(aio_set_fd_handler(ctx, b[0], fd_read_cb, NULL, &hb), 0);
	put_byte(a[1]);
	put_byte(b[1]);

	/* Both ready in one batch; whichever runs first removes both. */
	assert_int_equal(ha.reads + hb.reads, 0);
	assert_true(aio_poll(ctx, false));
	assert_int_equal(ha.reads + hb.reads, 1);
	assert_false(aio_poll(ctx, false)); /* still readable, but no handlers */
	assert_int_equal(ha.reads + hb.reads, 1);

	/* The fd can get a new handler right away. */
	ha.remove_self = ha.remove_other = false;
	ha.consume = 1;
	assert_int_equal(aio_set_fd_handler(ctx, a[0], fd_read_cb, NULL, &ha), 0);
	assert_true(aio_poll(ctx, false));
	assert_int_equal(ha.reads + hb.reads, 2);
	assert_int_equal(aio_set_fd_handler(ctx, a[0], NULL, NULL, NULL), 0);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
}

static void test_fd_nested_poll_dispatches_once(void **state)
{
	struct aio_context *ctx = *state;
	int a[2], b[2];
	struct fdh ha = {.ctx = ctx, .consume = 1, .nest = true};
	struct fdh hb = {.ctx = ctx, .consume = 1, .nest = true};

	make_pipe(a);
	make_pipe(b);
	ha.fd = a[0];
	hb.fd = b[0];
	assert_int_equal(aio_set_fd_handler(ctx, a[0], fd_read_cb, NULL, &ha), 0);
	assert_int_equal(aio_set_fd_handler(ctx, b[0], fd_read_cb, NULL, &hb), 0);
	put_byte(a[1]);
	put_byte(b[1]);

	/*
	 * The first callback nests a poll that runs the second; the outer
	 * poll must then not call the second again (it would find no byte).
	 */
	assert_true(aio_poll(ctx, false));
	assert_int_equal(ha.reads, 1);
	assert_int_equal(hb.reads, 1);
	assert_true(ha.nested_ret || hb.nested_ret);
	assert_false(aio_poll(ctx, false));
	assert_int_equal(ha.reads, 1);
	assert_int_equal(hb.reads, 1);

	aio_set_fd_handler(ctx, a[0], NULL, NULL, NULL);
	aio_set_fd_handler(ctx, b[0], NULL, NULL, NULL);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
}

struct writer {
	int fd;
	int64_t delay_ns;
};

static void *writer_thread(void *opaque)
{
	struct writer *w = opaque;

	ssize_t r;

	sleep_ns(w->delay_ns);
	r = write(w->fd, "x", 1); /* no cmocka asserts off the test thread */
	(void)r;
	return NULL;
}

static void test_fd_wakes_blocking_poll(void **state)
{
	struct aio_context *ctx = *state;
	int p[2];
	struct fdh h = {.ctx = ctx, .consume = 1};
	struct writer w = {.delay_ns = 2000000};
	pthread_t t;

	make_pipe(p);
	h.fd = p[0];
	w.fd = p[1];
	assert_int_equal(aio_set_fd_handler(ctx, p[0], fd_read_cb, NULL, &h), 0);
	assert_int_equal(pthread_create(&t, NULL, writer_thread, &w), 0);
	assert_int_equal(h.reads, 0);
	while (!aio_poll(ctx, true)) {
	}
	assert_int_equal(h.reads, 1);
	pthread_join(t, NULL);
	assert_false(aio_poll(ctx, false));
	assert_int_equal(h.reads, 1);
	aio_set_fd_handler(ctx, p[0], NULL, NULL, NULL);
	close(p[0]);
	close(p[1]);
}

static void test_fd_errors(void **state)
{
	struct aio_context *ctx = *state;
	struct fdh h = {.ctx = ctx};
	FILE *f = tmpfile();

	assert_non_null(f);
	assert_int_equal(aio_set_fd_handler(ctx, -1, fd_read_cb, NULL, &h), -EBADF);
	/* epoll cannot watch regular files. */
	assert_int_equal(aio_set_fd_handler(ctx, fileno(f), fd_read_cb, NULL, &h), -EPERM);
	/* Removing an unknown fd is harmless. */
	assert_int_equal(aio_set_fd_handler(ctx, fileno(f), NULL, NULL, NULL), 0);
	assert_false(aio_poll(ctx, false));
	assert_int_equal(h.reads, 0);
	fclose(f);
}

/* Timers */

struct tlog {
	int ids[16];
	int len;
};

struct tmr {
	struct aio_timer *t;
	struct tlog *log;
	int id;
	int runs;
	int rearm; /* re-arm at "now" this many more times */
	bool free_self;
};

static void timer_cb(void *opaque)
{
	struct tmr *m = opaque;

	m->runs++;
	if (m->log) {
		m->log->ids[m->log->len++] = m->id;
	}
	if (m->rearm > 0) {
		m->rearm--;
		aio_timer_mod(m->t, aio_clock_ns());
	}
	if (m->free_self) {
		aio_timer_free(m->t);
		m->t = NULL;
	}
}

static void test_timer_order(void **state)
{
	struct aio_context *ctx = *state;
	struct tlog log = {0};
	struct tmr m[4] = {{.id = 3}, {.id = 1}, {.id = 2}, {.id = 22}};
	int64_t now = aio_clock_ns();
	int i;

	for (i = 0; i < 4; i++) {
		m[i].log = &log;
		m[i].t = aio_timer_new(ctx, timer_cb, &m[i]);
		assert_non_null(m[i].t);
		assert_false(aio_timer_pending(m[i].t));
	}
	aio_timer_mod(m[0].t, now + 3000000);
	aio_timer_mod(m[1].t, now + 1000000);
	aio_timer_mod(m[2].t, now + 2000000);
	aio_timer_mod(m[3].t, now + 2000000); /* same deadline, armed later */
	for (i = 0; i < 4; i++) {
		assert_true(aio_timer_pending(m[i].t));
	}

	/* Nothing else to wake us: the deadlines bound each sleep. */
	while (log.len < 4) {
		int before = log.len;
		bool progress = aio_poll(ctx, true);

		assert_true(progress == (log.len > before));
	}
	assert_int_equal(log.len, 4);
	assert_int_equal(log.ids[0], 1);
	assert_int_equal(log.ids[1], 2);
	assert_int_equal(log.ids[2], 22);
	assert_int_equal(log.ids[3], 3);
	for (i = 0; i < 4; i++) {
		assert_false(aio_timer_pending(m[i].t));
		assert_int_equal(m[i].runs, 1);
		aio_timer_free(m[i].t);
	}
	assert_false(aio_poll(ctx, false));
	assert_int_equal(log.len, 4);
}

static void test_timer_del_and_mod(void **state)
{
	struct aio_context *ctx = *state;
	struct tmr m = {0};

	m.t = aio_timer_new(ctx, timer_cb, &m);
	assert_non_null(m.t);
	aio_timer_mod(m.t, aio_clock_ns() + 1000000);
	aio_timer_del(m.t);
	assert_false(aio_timer_pending(m.t));
	sleep_ns(2000000);
	assert_false(aio_poll(ctx, false)); /* past its old deadline: deleted */
	assert_int_equal(m.runs, 0);

	/* Re-arming moves the deadline: it fires once, at the new one. */
	aio_timer_mod(m.t, aio_clock_ns() + 60 * 1000000000LL);
	aio_timer_mod(m.t, aio_clock_ns());
	assert_int_equal(m.runs, 0);
	assert_true(aio_poll(ctx, false));
	assert_int_equal(m.runs, 1);
	assert_false(aio_poll(ctx, false));
	assert_int_equal(m.runs, 1);
	aio_timer_free(m.t);
}

static void test_timer_rearm_from_callback(void **state)
{
	struct aio_context *ctx = *state;
	struct tmr m = {.rearm = 2};
	int i;

	m.t = aio_timer_new(ctx, timer_cb, &m);
	assert_non_null(m.t);
	aio_timer_mod(m.t, aio_clock_ns());
	/* Re-armed into the past: once per poll, not in a loop. */
	for (i = 1; i <= 3; i++) {
		assert_int_equal(m.runs, i - 1);
		assert_true(aio_poll(ctx, true));
		assert_int_equal(m.runs, i);
	}
	assert_false(aio_timer_pending(m.t));
	assert_false(aio_poll(ctx, false));
	assert_int_equal(m.runs, 3);
	aio_timer_free(m.t);
}

static void test_timer_free_from_callback(void **state)
{
	struct aio_context *ctx = *state;
	struct tmr m = {.free_self = true};

	m.t = aio_timer_new(ctx, timer_cb, &m);
	assert_non_null(m.t);
	aio_timer_mod(m.t, aio_clock_ns() + 1000000);
	assert_int_equal(m.runs, 0);
	while (!aio_poll(ctx, true)) {
	}
	assert_int_equal(m.runs, 1);
	assert_null(m.t); /* freed itself; ASan would flag a later touch */
	assert_false(aio_poll(ctx, false));
	assert_int_equal(m.runs, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_fd_read, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_fd_write, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_fd_remove_from_callback, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_fd_nested_poll_dispatches_once, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_fd_wakes_blocking_poll, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_fd_errors, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_timer_order, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_timer_del_and_mod, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_timer_rearm_from_callback, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_timer_free_from_callback, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	};

	aio_test_init(60);
	return cmocka_run_group_tests_name("aio_io", tests, NULL, NULL);
}
