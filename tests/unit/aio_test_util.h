/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the aio unit tests (cmocka): a process-wide hang guard and a
 * per-context watchdog that turns a lost wakeup into a test failure.
 * Include after <cmocka.h>.
 */
#ifndef KVMINI_AIO_TEST_UTIL_H
#define KVMINI_AIO_TEST_UTIL_H

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "aio/aio.h"

/*
 * Installed at the AIO_PREEMPT_POINT()s of the notify protocol (owner and
 * schedulers): now and then yield or spin a little, as if preempted there,
 * so that other threads land in every gap of the protocol far more often
 * than the real, nanosecond-wide windows would allow.
 */
static inline void aio_test_preempt(void)
{
	static __thread unsigned seed;
	unsigned r;

	if (!seed) {
		seed = (unsigned)(uintptr_t)&seed | 1;
	}
	r = rand_r(&seed) % 8;
	if (r == 0) {
		sched_yield();
	} else if (r == 1) {
		int64_t end = aio_clock_ns() + 3000;

		while (aio_clock_ns() < end) {
		}
	}
}

/*
 * AIO_TEST_ASAN_FAKE_STACKS: in an ASan build, define
 * __asan_default_options so that locals live on ASan's fake stacks
 * (detect_stack_use_after_return). The coroutine tests use it: fake stacks
 * are what the fake-stack half of the fiber annotations is for. Use once,
 * at file scope of a test program.
 */
#if defined(__SANITIZE_ADDRESS__)
#define AIO_TEST_ASAN_FAKE_STACKS                                                                  \
	const char *__asan_default_options(void);                                                  \
	const char *__asan_default_options(void)                                                   \
	{                                                                                          \
		return "detect_stack_use_after_return=1";                                          \
	}
#else
#define AIO_TEST_ASAN_FAKE_STACKS
#endif

/* A hung test (a lost wakeup in a blocking aio_poll) must fail, not stall CI. */
static void aio_test_alarm(int sig)
{
	static const char msg[] = "aio test: hung for too long (lost wakeup?), failing\n";
	ssize_t r = write(2, msg, sizeof(msg) - 1);

	(void)r;
	(void)sig;
	_exit(1);
}

static inline void aio_test_init(unsigned hang_seconds)
{
	setvbuf(stdout, NULL, _IOLBF, 0); /* keep cmocka's progress if we _exit */
	signal(SIGALRM, aio_test_alarm);
	alarm(hang_seconds);
}

/* cmocka fixtures: a fresh context per test, which must free without leaks. */
static inline int aio_test_setup_ctx(void **state)
{
	struct aio_context *ctx;

	if (aio_context_new(&ctx)) {
		return -1;
	}
	*state = ctx;
	return 0;
}

static inline int aio_test_teardown_ctx(void **state)
{
	return aio_context_free(*state) == 0 ? 0 : -1;
}

static inline void sleep_ns(int64_t ns)
{
	struct timespec ts = {.tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL};

	while (nanosleep(&ts, &ts) && errno == EINTR) {
	}
}

/* Spin (politely) until *v >= target or *stop is set. */
static inline void wait_at_least(atomic_int *v, int target, atomic_bool *stop)
{
	while (atomic_load(v) < target && !(stop && atomic_load(stop))) {
		sched_yield();
	}
}

/*
 * Watchdog for a context whose owner sleeps in blocking aio_poll: if not
 * disarmed within @seconds, it makes an fd in the context readable. The
 * owner then wakes through epoll (not through aio_notify, so a lost
 * notification is not papered over), sees `fired` and fails the test.
 */
struct aio_watchdog {
	struct aio_context *ctx;
	int fire_fd; /* registered in ctx */
	int stop_fd; /* disarms the watchdog thread */
	int seconds;
	pthread_t tid;
	atomic_bool fired;
};

static inline void aio_watchdog_fd_cb(void *opaque)
{
	struct aio_watchdog *wd = opaque;
	uint64_t v;

	if (read(wd->fire_fd, &v, sizeof(v)) == sizeof(v)) {
		atomic_store(&wd->fired, true);
	}
}

static inline void *aio_watchdog_thread(void *opaque)
{
	struct aio_watchdog *wd = opaque;
	struct pollfd pfd = {.fd = wd->stop_fd, .events = POLLIN};
	uint64_t one = 1;
	int r;

	do {
		r = poll(&pfd, 1, wd->seconds * 1000);
	} while (r < 0 && errno == EINTR);
	if (r == 0) {
		ssize_t w;

		fprintf(stderr, "watchdog: no progress in %d s, waking the owner\n", wd->seconds);
		w = write(wd->fire_fd, &one, sizeof(one));
		(void)w;
	}
	return NULL;
}

/* Owner thread of @ctx, before it polls. */
static inline void aio_watchdog_start(struct aio_watchdog *wd, struct aio_context *ctx, int seconds)
{
	memset(wd, 0, sizeof(*wd));
	wd->ctx = ctx;
	wd->seconds = seconds;
	atomic_init(&wd->fired, false);
	wd->fire_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	wd->stop_fd = eventfd(0, EFD_CLOEXEC);
	assert_true(wd->fire_fd >= 0 && wd->stop_fd >= 0);
	assert_int_equal(aio_set_fd_handler(ctx, wd->fire_fd, aio_watchdog_fd_cb, NULL, wd), 0);
	assert_int_equal(pthread_create(&wd->tid, NULL, aio_watchdog_thread, wd), 0);
}

/* Owner thread. */
static inline void aio_watchdog_stop(struct aio_watchdog *wd)
{
	uint64_t one = 1;

	assert_int_equal(write(wd->stop_fd, &one, sizeof(one)), sizeof(one));
	pthread_join(wd->tid, NULL);
	aio_set_fd_handler(wd->ctx, wd->fire_fd, NULL, NULL, NULL);
	close(wd->fire_fd);
	close(wd->stop_fd);
}

#endif
