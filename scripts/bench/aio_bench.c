/* SPDX-License-Identifier: MIT */
/*
 * aio benchmark: cross-thread bottom-half latency and throughput, beside
 * the floor they are built on (a bare eventfd write waking a thread that
 * sleeps in epoll_wait), all measured in the same run.
 *
 *   latency:    a producer takes a timestamp and schedules a BH on a
 *               context whose owner sleeps in aio_poll(blocking); the
 *               callback takes the second timestamp. The producer waits
 *               for an ack and a short gap, so the owner is asleep again
 *               before each sample. One and two producers.
 *   throughput: producers schedule one-shot BHs back to back; BHs run
 *               per second from the first schedule to the last callback.
 *   coroutines: the same latency measurement with aio_co_wake waking a
 *               coroutine that yielded in the sleeping owner's context
 *               (the timestamp is taken when the coroutine runs again);
 *               and single-thread costs in ns per operation (median and
 *               p99 over batches): create + enter + return from the pool
 *               and with a new stack (mmap), an enter + yield round trip,
 *               and, for scale, a one-shot BH scheduled and run by
 *               aio_poll in the same thread.
 *
 * Usage: aio_bench [SAMPLES [ONESHOTS]]   (defaults 2000 and 200000)
 * A benchmark, not a test: nothing here is asserted.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "aio/aio.h"

#define GAP_NS 50000 /* lets the woken side go back to sleep */

static void die(const char *what)
{
	fprintf(stderr, "aio_bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void sleep_ns(int64_t ns)
{
	struct timespec ts = {.tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL};

	while (nanosleep(&ts, &ts) && errno == EINTR) {
	}
}

static void efd_write(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) != sizeof(one)) {
		die("eventfd write");
	}
}

static void efd_read(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) != sizeof(v)) {
		if (errno != EINTR) {
			die("eventfd read");
		}
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

struct stats {
	double median_us, p99_us;
};

static struct stats summarize(int64_t *v, int n)
{
	struct stats s;

	qsort(v, n, sizeof(*v), cmp_i64);
	s.median_us = v[n / 2] / 1000.0;
	s.p99_us = v[(int64_t)n * 99 / 100] / 1000.0;
	return s;
}

/* Floor: eventfd write -> wakeup from epoll_wait. */

struct floor_run {
	int efd;   /* the waiter sleeps on it */
	int ackfd; /* the sender waits on it */
	int n;
	_Atomic int64_t t0;
	int64_t *samples;
};

static void *floor_waiter(void *opaque)
{
	struct floor_run *f = opaque;
	struct epoll_event ev = {.events = EPOLLIN}, out;
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	int i;

	if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, f->efd, &ev)) {
		die("epoll");
	}
	for (i = 0; i < f->n; i++) {
		while (epoll_wait(epfd, &out, 1, -1) != 1) {
		}
		f->samples[i] = aio_clock_ns() - atomic_load(&f->t0);
		efd_read(f->efd);
		efd_write(f->ackfd);
	}
	close(epfd);
	return NULL;
}

static struct stats bench_floor(int n)
{
	struct floor_run f = {.n = n};
	pthread_t t;
	int i;

	f.samples = calloc(n, sizeof(*f.samples));
	f.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	f.ackfd = eventfd(0, EFD_CLOEXEC);
	if (!f.samples || f.efd < 0 || f.ackfd < 0 || pthread_create(&t, NULL, floor_waiter, &f)) {
		die("floor setup");
	}
	for (i = 0; i < n; i++) {
		sleep_ns(GAP_NS);
		atomic_store(&f.t0, aio_clock_ns());
		efd_write(f.efd);
		efd_read(f.ackfd);
	}
	pthread_join(t, NULL);
	close(f.efd);
	close(f.ackfd);
	struct stats s = summarize(f.samples, n);
	free(f.samples);
	return s;
}

/* The context's owner: polls until told to stop. */

struct owner {
	struct aio_context *ctx;
	pthread_t tid;
	atomic_bool stop;
};

static void *owner_run(void *opaque)
{
	struct owner *o = opaque;

	while (!atomic_load(&o->stop)) {
		aio_poll(o->ctx, true);
	}
	return NULL;
}

static void owner_start(struct owner *o)
{
	atomic_init(&o->stop, false);
	if (aio_context_new(&o->ctx) || pthread_create(&o->tid, NULL, owner_run, o)) {
		die("owner setup");
	}
}

/* After this, the calling thread owns o->ctx (and must free it). */
static void owner_join(struct owner *o)
{
	atomic_store(&o->stop, true);
	aio_notify(o->ctx);
	pthread_join(o->tid, NULL);
}

/*
 * Wakeup latency: a BH scheduled (aio_bh_schedule), or a coroutine that
 * yielded in the owner's context woken (aio_co_wake). The callback, or the
 * coroutine when it runs again, takes the second timestamp and acks.
 */

struct lat_producer {
	struct aio_bh *bh;    /* BH mode */
	struct coroutine *co; /* coroutine mode */
	int ackfd;
	int n, i;
	int64_t t0; /* written before each wakeup, read by the woken side */
	int64_t *samples;
	bool stop;	      /* coroutine mode: return at the next wakeup */
	atomic_bool returned; /* coroutine mode */
	pthread_t tid;
};

static void lat_cb(void *opaque)
{
	struct lat_producer *p = opaque;

	p->samples[p->i++] = aio_clock_ns() - p->t0;
	efd_write(p->ackfd);
}

static void lat_co(void *opaque)
{
	struct lat_producer *p = opaque;

	efd_write(p->ackfd); /* ready: about to yield */
	for (;;) {
		coroutine_yield();
		if (p->stop) {
			break;
		}
		lat_cb(p);
	}
	atomic_store(&p->returned, true);
}

static void lat_wake(struct lat_producer *p)
{
	if (p->co) {
		aio_co_wake(p->co);
	} else {
		aio_bh_schedule(p->bh);
	}
}

static void *lat_thread(void *opaque)
{
	struct lat_producer *p = opaque;
	int i;

	if (p->co) {
		efd_read(p->ackfd); /* first entered by the owner */
	}
	for (i = 0; i < p->n; i++) {
		sleep_ns(GAP_NS);
		p->t0 = aio_clock_ns();
		lat_wake(p);
		efd_read(p->ackfd);
	}
	if (p->co) {
		p->stop = true;
		aio_co_wake(p->co);
	}
	return NULL;
}

static struct stats bench_latency(int producers, int n, bool coroutine)
{
	struct lat_producer p[2] = {{0}};
	struct owner o;
	int64_t *all = calloc((size_t)producers * n, sizeof(*all));
	int i;

	owner_start(&o);
	for (i = 0; i < producers; i++) {
		p[i].n = n;
		p[i].samples = all + (size_t)i * n;
		p[i].ackfd = eventfd(0, EFD_CLOEXEC);
		atomic_init(&p[i].returned, false);
		if (coroutine) {
			if (coroutine_new(lat_co, &p[i], &p[i].co)) {
				die("latency setup");
			}
			aio_co_schedule(o.ctx, p[i].co);
		} else {
			p[i].bh = aio_bh_new(o.ctx, lat_cb, &p[i]);
		}
		if (!all || p[i].ackfd < 0 || !(p[i].bh || p[i].co) ||
		    pthread_create(&p[i].tid, NULL, lat_thread, &p[i])) {
			die("latency setup");
		}
	}
	for (i = 0; i < producers; i++) {
		pthread_join(p[i].tid, NULL);
		while (p[i].co && !atomic_load(&p[i].returned)) {
			sleep_ns(100000); /* its last wakeup must run before the owner stops */
		}
		close(p[i].ackfd);
	}
	owner_join(&o); /* deleting BHs is for the owner: that is us now */
	for (i = 0; i < producers; i++) {
		aio_bh_delete(p[i].bh);
	}
	aio_context_free(o.ctx);
	struct stats s = summarize(all, producers * n);
	free(all);
	return s;
}

/* One-shot BH throughput. */

struct tput {
	struct aio_context *ctx;
	int per_producer;
	atomic_int ran;
	_Atomic int64_t last_ns;
	atomic_bool go;
};

static void tput_cb(void *opaque)
{
	struct tput *t = opaque;

	atomic_store_explicit(&t->last_ns, aio_clock_ns(), memory_order_relaxed);
	atomic_fetch_add_explicit(&t->ran, 1, memory_order_release);
}

static void *tput_thread(void *opaque)
{
	struct tput *t = opaque;
	int i;

	while (!atomic_load(&t->go)) {
	}
	for (i = 0; i < t->per_producer; i++) {
		if (aio_bh_schedule_oneshot(t->ctx, tput_cb, t)) {
			die("aio_bh_schedule_oneshot");
		}
	}
	return NULL;
}

static double bench_throughput(int producers, int per_producer)
{
	struct tput t = {.per_producer = per_producer};
	struct owner o;
	pthread_t tid[2];
	int64_t start;
	int i;

	owner_start(&o);
	t.ctx = o.ctx;
	atomic_init(&t.ran, 0);
	atomic_init(&t.go, false);
	for (i = 0; i < producers; i++) {
		if (pthread_create(&tid[i], NULL, tput_thread, &t)) {
			die("throughput setup");
		}
	}
	sleep_ns(1000000);
	start = aio_clock_ns();
	atomic_store(&t.go, true);
	for (i = 0; i < producers; i++) {
		pthread_join(tid[i], NULL);
	}
	while (atomic_load_explicit(&t.ran, memory_order_acquire) < producers * per_producer) {
		sleep_ns(100000);
	}
	owner_join(&o);
	aio_context_free(o.ctx);
	return producers * per_producer / ((atomic_load(&t.last_ns) - start) / 1e9);
}

/* Single-thread costs: ns per operation over batches. */

#define COST_BATCHES 200

static void noop_co(void *opaque)
{
	(void)opaque;
}

static void noop_bh(void *opaque)
{
	(void)opaque;
}

static void yield_forever(void *opaque)
{
	bool *stop = opaque;

	while (!*stop) {
		coroutine_yield();
	}
}

enum cost_kind { COST_BH, COST_CO_POOLED, COST_CO_NEW_STACK, COST_CO_YIELD };

static struct stats bench_cost(enum cost_kind kind, int per_batch)
{
	int64_t v[COST_BATCHES];
	struct aio_context *ctx;
	struct coroutine *co, *yielder = NULL;
	bool stop = false;
	int b, k;

	if (aio_context_new(&ctx)) {
		die("aio_context_new");
	}
	if (kind == COST_CO_YIELD) {
		if (coroutine_new(yield_forever, &stop, &yielder)) {
			die("coroutine_new");
		}
	}
	for (b = 0; b < COST_BATCHES; b++) {
		int64_t t = aio_clock_ns();

		for (k = 0; k < per_batch; k++) {
			switch (kind) {
			case COST_BH:
				if (aio_bh_schedule_oneshot(ctx, noop_bh, NULL)) {
					die("aio_bh_schedule_oneshot");
				}
				aio_poll(ctx, false);
				break;
			case COST_CO_POOLED:
				if (coroutine_new(noop_co, NULL, &co)) {
					die("coroutine_new");
				}
				coroutine_enter(co);
				break;
			case COST_CO_NEW_STACK:
				/* Not the pooled size: every create maps a stack. */
				if (coroutine_new_sized(noop_co, NULL, COROUTINE_STACK_SIZE + 4096,
							&co)) {
					die("coroutine_new_sized");
				}
				coroutine_enter(co);
				break;
			case COST_CO_YIELD:
				coroutine_enter(yielder);
				break;
			}
		}
		/* x1000: keep a tenth of a nanosecond through the integer stats. */
		v[b] = (aio_clock_ns() - t) * 1000 / per_batch;
	}
	if (yielder) {
		stop = true;
		coroutine_enter(yielder);
	}
	aio_context_free(ctx);
	return summarize(v, COST_BATCHES); /* "us" of x1000 values: ns */
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 2000;
	int oneshots = argc > 2 ? atoi(argv[2]) : 200000;
	struct stats fl, b1, b2, c1, c2, cost_bh, cost_pooled, cost_new, cost_yield;
	double t1, t2;

	if (n < 100 || oneshots < 1000) {
		fprintf(stderr, "usage: aio_bench [SAMPLES>=100 [ONESHOTS>=1000]]\n");
		return 2;
	}
	fl = bench_floor(n);
	b1 = bench_latency(1, n, false);
	b2 = bench_latency(2, n, false);
	c1 = bench_latency(1, n, true);
	c2 = bench_latency(2, n, true);
	t1 = bench_throughput(1, oneshots);
	t2 = bench_throughput(2, oneshots);
	cost_bh = bench_cost(COST_BH, 1000);
	cost_pooled = bench_cost(COST_CO_POOLED, 1000);
	cost_new = bench_cost(COST_CO_NEW_STACK, 50);
	cost_yield = bench_cost(COST_CO_YIELD, 1000);

	printf("cross-thread wakeup, sleeping target, %d samples per producer (us)\n", n);
	printf("%-44s %9s %9s %9s\n", "path", "median", "p99", "x floor");
	printf("%-44s %9.1f %9.1f %9s\n", "floor: eventfd write -> epoll_wait wakeup", fl.median_us,
	       fl.p99_us, "1.00");
	printf("%-44s %9.1f %9.1f %9.2f\n", "aio_bh_schedule -> callback, 1 producer", b1.median_us,
	       b1.p99_us, b1.median_us / fl.median_us);
	printf("%-44s %9.1f %9.1f %9.2f\n", "aio_bh_schedule -> callback, 2 producers",
	       b2.median_us, b2.p99_us, b2.median_us / fl.median_us);
	printf("%-44s %9.1f %9.1f %9.2f\n", "aio_co_wake -> coroutine runs, 1 producer",
	       c1.median_us, c1.p99_us, c1.median_us / fl.median_us);
	printf("%-44s %9.1f %9.1f %9.2f\n", "aio_co_wake -> coroutine runs, 2 producers",
	       c2.median_us, c2.p99_us, c2.median_us / fl.median_us);
	printf("\none-shot BH throughput, %d BHs per producer, owner in aio_poll\n", oneshots);
	printf("%-44s %12s\n", "producers", "BHs/s");
	printf("%-44s %12.0f\n", "1", t1);
	printf("%-44s %12.0f\n", "2", t2);
	printf("\nsingle-thread costs, ns per operation (median and p99 of %d batches)\n",
	       COST_BATCHES);
	printf("%-44s %9s %9s\n", "operation", "median", "p99");
	printf("%-44s %9.1f %9.1f\n", "one-shot BH: schedule + aio_poll runs it", cost_bh.median_us,
	       cost_bh.p99_us);
	printf("%-44s %9.1f %9.1f\n", "coroutine: create + enter + return (pool)",
	       cost_pooled.median_us, cost_pooled.p99_us);
	printf("%-44s %9.1f %9.1f\n", "coroutine: create + enter + return (mmap)",
	       cost_new.median_us, cost_new.p99_us);
	printf("%-44s %9.1f %9.1f\n", "coroutine: enter + yield round trip", cost_yield.median_us,
	       cost_yield.p99_us);
	return 0;
}
