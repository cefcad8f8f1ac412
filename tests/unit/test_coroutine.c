/* SPDX-License-Identifier: MIT */
/*
 * Coroutines: enter and yield, nesting, the pool, stack errors and the
 * guard page, floating-point control state across switches, and the
 * AioContext side (aio_co_schedule order, double schedule reports,
 * aio_co_enter deferral, aio_co_wake, moving between contexts, holding
 * another thread's context).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <sys/resource.h>
#include <sys/wait.h>

#include "aio/aio.h"
#include "aio/aio_int.h" /* struct coroutine: stack bounds for the guard-page test */
#include "tests/unit/aio_test_util.h"

AIO_TEST_ASAN_FAKE_STACKS

/* Captures what the code under test prints on stderr. */
struct capture {
	int saved_fd;
	FILE *file;
	char text[4096];
};

static void capture_start(struct capture *c)
{
	fflush(stderr);
	c->file = tmpfile();
	assert_non_null(c->file);
	c->saved_fd = dup(2);
	assert_true(c->saved_fd >= 0);
	assert_true(dup2(fileno(c->file), 2) == 2);
}

static const char *capture_end(struct capture *c)
{
	size_t n;

	fflush(stderr);
	assert_true(dup2(c->saved_fd, 2) == 2);
	close(c->saved_fd);
	rewind(c->file);
	n = fread(c->text, 1, sizeof(c->text) - 1, c->file);
	c->text[n] = '\0';
	fclose(c->file);
	fprintf(stderr, "%s", c->text); /* keep it visible in the test log */
	return c->text;
}

/* Enter and yield. */

struct steps {
	int step;
	struct coroutine *self_seen;
	struct aio_context *ctx_seen;
	int *log;
	int log_len;
};

static void three_yields(void *opaque)
{
	struct steps *s = opaque;

	s->self_seen = coroutine_self();
	s->ctx_seen = aio_get_current_context();
	s->step = 1;
	coroutine_yield();
	s->step = 2;
	coroutine_yield();
	s->step = 3;
	coroutine_yield();
	s->step = 4;
}

static void test_co_enter_yield(void **state)
{
	struct steps s = {0};
	struct coroutine *co;

	(void)state;
	assert_null(coroutine_self());
	assert_int_equal(coroutine_new(three_yields, &s, &co), 0);
	assert_string_equal(coroutine_name(co), "three_yields");
	assert_int_equal(s.step, 0); /* creating does not run it */
	coroutine_enter(co);
	assert_int_equal(s.step, 1);
	assert_ptr_equal(s.self_seen, co);
	assert_null(s.ctx_seen); /* entered outside any context */
	assert_null(coroutine_self());
	coroutine_enter(co);
	assert_int_equal(s.step, 2);
	coroutine_enter(co);
	assert_int_equal(s.step, 3);
	coroutine_enter(co); /* returns: recycled */
	assert_int_equal(s.step, 4);
	assert_null(coroutine_self());
}

/* Values live in callee-saved registers across a yield survive it. */
static void keep_values(void *opaque)
{
	volatile int *bad = opaque;
	uint64_t a = 0x1111, b = 0x2222, c = 0x3333, d = 0x4444, e = 0x5555, f = 0x6666;
	int i;

	for (i = 0; i < 100; i++) {
		a = a * 3 + 1;
		b ^= a;
		c += b;
		d -= c;
		e = e * 7 + d;
		f ^= e;
		coroutine_yield();
		/* The same sequence recomputed from scratch must agree. */
	}
	{
		uint64_t a2 = 0x1111, b2 = 0x2222, c2 = 0x3333, d2 = 0x4444, e2 = 0x5555,
			 f2 = 0x6666;

		for (i = 0; i < 100; i++) {
			a2 = a2 * 3 + 1;
			b2 ^= a2;
			c2 += b2;
			d2 -= c2;
			e2 = e2 * 7 + d2;
			f2 ^= e2;
		}
		*bad = a != a2 || b != b2 || c != c2 || d != d2 || e != e2 || f != f2;
	}
}

static void clobber_callee_saved(void)
{
	/* The enterer's own callee-saved registers get new values in between. */
	__asm__ volatile("mov $1, %%rbx\n\tmov $2, %%r12\n\tmov $3, %%r13\n\t"
			 "mov $4, %%r14\n\tmov $5, %%r15"
			 :
			 :
			 : "rbx", "r12", "r13", "r14", "r15");
}

static void test_co_registers_survive(void **state)
{
	volatile int bad = -1;
	struct coroutine *co;
	int i;

	(void)state;
	assert_int_equal(coroutine_new(keep_values, (void *)&bad, &co), 0);
	for (i = 0; i <= 100; i++) {
		coroutine_enter(co);
		clobber_callee_saved();
	}
	assert_int_equal(bad, 0);
}

/* MXCSR and the x87 control word are per coroutine (callee-saved in the ABI). */
static uint32_t get_mxcsr(void)
{
	uint32_t v;

	__asm__ volatile("stmxcsr %0" : "=m"(v));
	return v;
}

static void set_mxcsr(uint32_t v)
{
	__asm__ volatile("ldmxcsr %0" : : "m"(v));
}

static uint16_t get_fpucw(void)
{
	uint16_t v;

	__asm__ volatile("fnstcw %0" : "=m"(v));
	return v;
}

static void set_fpucw(uint16_t v)
{
	__asm__ volatile("fldcw %0" : : "m"(v));
}

#define MXCSR_RC_MASK 0x6000u /* rounding control */
#define MXCSR_RZ      0x6000u /* round toward zero */
#define FPUCW_RC_MASK 0x0c00u
#define FPUCW_RZ      0x0c00u

struct fp_state {
	uint32_t mxcsr_in; /* seen at the start */
	uint32_t mxcsr_after_yield;
	uint16_t fpucw_after_yield;
};

static void fp_changer(void *opaque)
{
	struct fp_state *f = opaque;
	uint32_t mx = get_mxcsr();
	uint16_t cw = get_fpucw();

	f->mxcsr_in = mx;
	set_mxcsr((mx & ~MXCSR_RC_MASK) | MXCSR_RZ);
	set_fpucw((cw & ~FPUCW_RC_MASK) | FPUCW_RZ);
	coroutine_yield();
	f->mxcsr_after_yield = get_mxcsr();
	f->fpucw_after_yield = get_fpucw();
	set_mxcsr(mx); /* the ABI: restore before returning */
	set_fpucw(cw);
}

static void test_co_fp_control(void **state)
{
	struct fp_state f = {0};
	uint32_t mx = get_mxcsr();
	uint16_t cw = get_fpucw();
	struct coroutine *co;

	(void)state;
	assert_int_equal(coroutine_new(fp_changer, &f, &co), 0);
	coroutine_enter(co);
	/* The coroutine switched to round-toward-zero; we did not. */
	assert_int_equal(get_mxcsr() & MXCSR_RC_MASK, mx & MXCSR_RC_MASK);
	assert_int_equal(get_fpucw() & FPUCW_RC_MASK, cw & FPUCW_RC_MASK);
	assert_int_equal(f.mxcsr_in & MXCSR_RC_MASK, mx & MXCSR_RC_MASK); /* inherited */
	/* Our own change must not leak into the coroutine either. */
	set_mxcsr(mx ^ 0x0040u); /* flip DAZ */
	coroutine_enter(co);
	assert_int_equal(f.mxcsr_after_yield & MXCSR_RC_MASK, MXCSR_RZ);
	assert_int_equal(f.mxcsr_after_yield & 0x0040u, mx & 0x0040u);
	assert_int_equal(f.fpucw_after_yield & FPUCW_RC_MASK, FPUCW_RZ);
	assert_int_equal(get_mxcsr(), mx ^ 0x0040u);
	set_mxcsr(mx);
	assert_int_equal(get_fpucw(), cw);
}

/* Nesting: a coroutine enters another directly. */

struct nest {
	struct coroutine *outer, *inner;
	int log[16];
	int len;
	struct coroutine *self_after_inner;
};

static void nest_log(struct nest *n, int v)
{
	n->log[n->len++] = v;
}

static void nest_inner(void *opaque)
{
	struct nest *n = opaque;

	nest_log(n, 2);
	coroutine_yield(); /* back to outer */
	nest_log(n, 6);
}

static void nest_outer(void *opaque)
{
	struct nest *n = opaque;

	nest_log(n, 1);
	coroutine_enter(n->inner);
	n->self_after_inner = coroutine_self();
	nest_log(n, 3);
	coroutine_yield(); /* back to the test */
	nest_log(n, 5);
	coroutine_enter(n->inner); /* inner returns */
	nest_log(n, 7);
}

static void test_co_nesting(void **state)
{
	static const int want[] = {1, 2, 3, 4, 5, 6, 7};
	struct nest n = {0};
	int i;

	(void)state;
	assert_int_equal(coroutine_new(nest_outer, &n, &n.outer), 0);
	assert_int_equal(coroutine_new(nest_inner, &n, &n.inner), 0);
	coroutine_enter(n.outer);
	assert_ptr_equal(n.self_after_inner, n.outer);
	assert_null(coroutine_self());
	nest_log(&n, 4);
	coroutine_enter(n.outer);
	assert_int_equal(n.len, 7);
	for (i = 0; i < 7; i++) {
		assert_int_equal(n.log[i], want[i]);
	}
}

/* A chain of coroutines, each entering the next, all yielding back. */
#define CHAIN 12
struct chain {
	struct coroutine *co[CHAIN];
	int depth_seen[CHAIN];
	int order[2 * CHAIN];
	int len;
};

struct chain_arg {
	struct chain *c;
	int i;
};

static void chain_fn(void *opaque)
{
	struct chain_arg *a = opaque;
	struct chain *c = a->c;

	c->order[c->len++] = a->i;
	assert_ptr_equal(coroutine_self(), c->co[a->i]);
	if (a->i + 1 < CHAIN) {
		coroutine_enter(c->co[a->i + 1]);
	}
	assert_ptr_equal(coroutine_self(), c->co[a->i]);
	c->order[c->len++] = 100 + a->i;
}

static void test_co_deep_nesting(void **state)
{
	struct chain c = {0};
	struct chain_arg args[CHAIN];
	int i;

	(void)state;
	for (i = 0; i < CHAIN; i++) {
		args[i].c = &c;
		args[i].i = i;
		assert_int_equal(coroutine_new(chain_fn, &args[i], &c.co[i]), 0);
	}
	coroutine_enter(c.co[0]);
	assert_int_equal(c.len, 2 * CHAIN);
	for (i = 0; i < CHAIN; i++) {
		assert_int_equal(c.order[i], i);
		assert_int_equal(c.order[CHAIN + i], 100 + CHAIN - 1 - i);
	}
}

/* The pool: a coroutine that returned is reused, with its stack, by the next create. */

static void count_fn(void *opaque)
{
	(*(int *)opaque)++;
}

static void add_ten(void *opaque)
{
	*(int *)opaque += 10;
}

static void test_co_pool_reuse(void **state)
{
	struct coroutine *first, *co, *other;
	unsigned long errors;
	void *stack;
	int runs = 0, tens = 0, i;

	(void)state;
	assert_int_equal(coroutine_new(count_fn, &runs, &first), 0);
	stack = first->stack_lo;
	coroutine_enter(first);
	assert_int_equal(runs, 1);
	for (i = 0; i < 1000; i++) {
		if (i % 2) {
			assert_int_equal(coroutine_new(count_fn, &runs, &co), 0);
		} else {
			assert_int_equal(coroutine_new(add_ten, &tens, &co), 0);
		}
		assert_ptr_equal(co, first); /* recycled, not a new mapping */
		assert_ptr_equal(co->stack_lo, stack);
		assert_string_equal(coroutine_name(co), i % 2 ? "count_fn" : "add_ten");
		coroutine_enter(co);
	}
	assert_int_equal(runs, 501);
	assert_int_equal(tens, 5000);

	/* Never entered: coroutine_delete recycles it too (once). */
	errors = coroutine_error_count();
	assert_int_equal(coroutine_new(count_fn, &runs, &co), 0);
	coroutine_delete(co);
	coroutine_delete(co); /* reported, not put in the pool twice */
	assert_int_equal(coroutine_error_count(), errors + 1);
	assert_int_equal(coroutine_new(count_fn, &runs, &co), 0);
	assert_ptr_equal(co, first);
	assert_int_equal(coroutine_new(count_fn, &runs, &other), 0);
	assert_ptr_not_equal(other, first); /* the pool held it once only */
	coroutine_enter(co);
	coroutine_enter(other);
	assert_int_equal(runs, 503);

	/* A non-default stack size is not pooled. */
	assert_int_equal(coroutine_new_sized(count_fn, &runs, 64 * 1024, &co), 0);
	assert_int_equal(co->stack_size, 64 * 1024);
	assert_ptr_not_equal(co, first);
	coroutine_enter(co);
	assert_int_equal(runs, 504);
}

/* Many coroutines alive at once, each suspended on its own stack. */
static void suspend_twice(void *opaque)
{
	int *v = opaque;
	volatile char pad[2000]; /* use some stack */

	pad[0] = (char)*v;
	coroutine_yield();
	*v = *v * 2 + pad[0] - (char)*v;
}

static void test_co_many_alive(void **state)
{
	enum { N = 300 };
	struct coroutine *co[N];
	int v[N];
	int i;

	(void)state;
	for (i = 0; i < N; i++) {
		v[i] = i;
		assert_int_equal(coroutine_new(suspend_twice, &v[i], &co[i]), 0);
		coroutine_enter(co[i]);
	}
	for (i = N - 1; i >= 0; i--) {
		coroutine_enter(co[i]);
	}
	for (i = 0; i < N; i++) {
		assert_int_equal(v[i], 2 * i);
	}
}

/* No stack: a clear error, not a crash. */

static void never_runs(void *opaque)
{
	fail_msg("a coroutine without a stack ran");
}

static void test_co_stack_too_large(void **state)
{
	struct coroutine *co = (struct coroutine *)0x1;
	struct capture cap;
	const char *msg;

	(void)state;
	capture_start(&cap);
	/* 2^47 bytes: the whole user address space of x86_64. */
	assert_int_equal(coroutine_new_sized(never_runs, NULL, (size_t)1 << 47, &co), -ENOMEM);
	msg = capture_end(&cap);
	assert_ptr_equal(co, (struct coroutine *)0x1); /* untouched */
	assert_non_null(strstr(msg, "coroutine: cannot map a"));
	assert_non_null(strstr(msg, "'never_runs'"));
	assert_non_null(strstr(msg, "Cannot allocate memory"));
	assert_ptr_equal(strchr(msg, '\n'), msg + strlen(msg) - 1); /* one line */
}

static size_t vm_size_bytes(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t kb = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmSize: %zu kB", &kb) == 1) {
			break;
		}
	}
	fclose(f);
	assert_true(kb > 0);
	return kb * 1024;
}

/*
 * Address space runs out (RLIMIT_AS leaves room for a few stacks): the
 * create that does not fit fails with -ENOMEM and a message, the process
 * goes on, and once stacks are freed creating works again.
 */
static void test_co_stack_exhaustion(void **state)
{
	enum { ROOM = 6, MAX_TRY = 64 };
	size_t per = COROUTINE_STACK_SIZE + (size_t)sysconf(_SC_PAGESIZE);
	struct coroutine *co[MAX_TRY];
	struct rlimit old, lim;
	struct capture cap;
	const char *msg;
	int n = 0, ret = 0, i;

	(void)state;
	coroutine_pool_drain(); /* pooled stacks would need no new mapping */
	assert_int_equal(getrlimit(RLIMIT_AS, &old), 0);
	lim = old;
	/* Room for ROOM stacks and then some slack (less than one stack). */
	lim.rlim_cur = vm_size_bytes() + ROOM * per + per / 2;
	if (old.rlim_cur != RLIM_INFINITY && lim.rlim_cur > old.rlim_cur) {
		skip(); /* an address-space limit is in force already */
	}
	capture_start(&cap);
	assert_int_equal(setrlimit(RLIMIT_AS, &lim), 0);
	while (n < MAX_TRY) {
		ret = coroutine_new(never_runs, NULL, &co[n]);
		if (ret) {
			break;
		}
		n++;
	}
	assert_int_equal(setrlimit(RLIMIT_AS, &old), 0);
	msg = capture_end(&cap);
	assert_int_equal(ret, -ENOMEM);
	/* The sanitizer runtimes may map a little meanwhile: about ROOM fit. */
	assert_true(n >= 1 && n <= ROOM);
	assert_non_null(strstr(msg, "coroutine: cannot map a 256 KiB stack"));
	assert_non_null(strstr(msg, "'never_runs'"));
	for (i = 0; i < n; i++) {
		coroutine_delete(co[i]);
	}
	coroutine_pool_drain();
	assert_int_equal(coroutine_new(never_runs, NULL, &co[0]), 0);
	coroutine_delete(co[0]);
}

/* The guard page: overflowing a coroutine's stack faults instead of corrupting memory. */

static __attribute__((noinline)) int recurse(int n)
{
	volatile char buf[512];

	buf[0] = (char)n;
	if (n == 0) {
		return buf[0];
	}
	return recurse(n - 1) + buf[0];
}

static void overflow_fn(void *opaque)
{
	*(int *)opaque = recurse(1 << 20); /* 512 MiB of frames: far past 256 KiB */
}

/* Permissions of the mapping that starts at @addr, from /proc/self/maps. */
static const char *map_perms(void *addr)
{
	static char perms[8];
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned long lo, hi;
	char line[512];

	assert_non_null(f);
	strcpy(perms, "none");
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 && lo == (uintptr_t)addr) {
			break;
		}
		strcpy(perms, "none");
	}
	fclose(f);
	return perms;
}

static void test_co_guard_page(void **state)
{
	struct coroutine *co;
	int status, out = 0;
	pid_t pid;

	(void)state;
	assert_int_equal(coroutine_new(never_runs, NULL, &co), 0);
	/* The page just below the stack is ours and inaccessible. */
	assert_ptr_equal((char *)co->stack_lo - sysconf(_SC_PAGESIZE), co->map);
	assert_int_equal(co->map_size, co->stack_size + sysconf(_SC_PAGESIZE));
	assert_string_equal(map_perms(co->map), "---p");
	assert_string_equal(map_perms(co->stack_lo), "rw-p");
	coroutine_delete(co);

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct coroutine *c;

		if (coroutine_new(overflow_fn, &out, &c)) {
			_exit(3);
		}
		coroutine_enter(c);
		_exit(0); /* survived an overflow: no guard */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	/* A plain build dies of SIGSEGV; ASan reports the overflow and exits 1. */
	if (WIFSIGNALED(status)) {
		assert_int_equal(WTERMSIG(status), SIGSEGV);
	} else {
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 1);
	}
}

/* Scheduling in a context: order, no synchronous run, double schedule. */

struct sched_rec {
	int id;
	int *log;
	int *len;
	struct aio_context *ctx;
	struct aio_context *ctx_seen;
	struct coroutine *co;
	struct coroutine *late; /* scheduled from inside the run */
	int runs;
	int yields;
};

static void sched_fn(void *opaque)
{
	struct sched_rec *r = opaque;

	do {
		r->log[(*r->len)++] = r->id;
		r->runs++;
		r->ctx_seen = aio_get_current_context();
		if (r->late) {
			aio_co_schedule(r->ctx, r->late);
			r->late = NULL;
		}
		if (r->yields-- > 0) {
			coroutine_yield();
		}
	} while (r->yields >= 0);
}

static void test_co_schedule_order(void **state)
{
	struct aio_context *ctx = *state;
	static const int order[] = {3, 1, 4, 0, 2};
	struct sched_rec r[6];
	int log[16], len = 0, i;

	for (i = 0; i < 6; i++) {
		r[i] = (struct sched_rec){.id = i, .log = log, .len = &len, .ctx = ctx};
		assert_int_equal(coroutine_new(sched_fn, &r[i], &r[i].co), 0);
	}
	r[3].late = r[5].co; /* scheduled while the batch runs: after it */
	for (i = 0; i < 5; i++) {
		aio_co_schedule(ctx, r[order[i]].co);
	}
	assert_int_equal(len, 0); /* never synchronous */
	assert_true(aio_poll(ctx, false));
	assert_true(len >= 5);
	for (i = 0; i < 5; i++) {
		assert_int_equal(log[i], order[i]);
		assert_ptr_equal(r[order[i]].ctx_seen, ctx);
	}
	while (aio_poll(ctx, false)) {
	}
	assert_int_equal(len, 6);
	assert_int_equal(log[5], 5);
}

static void test_co_double_schedule(void **state)
{
	struct aio_context *ctx = *state;
	unsigned long errors = coroutine_error_count();
	struct sched_rec r = {.yields = 1};
	struct capture cap;
	const char *msg;
	int log[8], len = 0;

	r.log = log;
	r.len = &len;
	assert_int_equal(coroutine_new(sched_fn, &r, &r.co), 0);
	aio_co_schedule(ctx, r.co);
	capture_start(&cap);
	aio_co_schedule(ctx, r.co);
	msg = capture_end(&cap);
	assert_int_equal(coroutine_error_count(), errors + 1);
	/* Who scheduled it first is named. */
	assert_non_null(strstr(msg, "already scheduled by 'test_co_double_schedule'"));
	assert_non_null(strstr(msg, "'sched_fn'"));
	assert_true(aio_poll(ctx, false));
	assert_false(aio_poll(ctx, false));
	assert_int_equal(r.runs, 1); /* once, not twice */

	/* Entering it directly while it is scheduled is refused too. */
	aio_co_schedule(ctx, r.co);
	capture_start(&cap);
	coroutine_enter(r.co);
	msg = capture_end(&cap);
	assert_int_equal(coroutine_error_count(), errors + 2);
	assert_non_null(strstr(msg, "while scheduled by 'test_co_double_schedule'"));
	assert_int_equal(r.runs, 1);
	assert_true(aio_poll(ctx, false)); /* the schedule still runs it: it returns */
	assert_int_equal(r.runs, 2);
}

/* aio_co_enter from inside a coroutine: runs after the caller yields. */

struct defer {
	struct aio_context *ctx;
	struct coroutine *a, *b;
	int log[8];
	int len;
	unsigned long errors_before;
};

static void defer_b(void *opaque)
{
	struct defer *d = opaque;

	d->log[d->len++] = 20;
	assert_ptr_equal(aio_get_current_context(), d->ctx);
}

static void defer_a(void *opaque)
{
	struct defer *d = opaque;

	d->log[d->len++] = 10;
	aio_co_enter(d->ctx, d->b);
	d->log[d->len++] = 11; /* b has not run yet */
	aio_co_wake(d->a);     /* waking itself is reported, not done */
	d->log[d->len++] = 12;
}

static void defer_bh(void *opaque)
{
	struct defer *d = opaque;

	/* In the context, not in a coroutine: enters at once. */
	aio_co_enter(d->ctx, d->a);
	d->log[d->len++] = 30;
}

static void test_co_enter_deferred(void **state)
{
	struct aio_context *ctx = *state;
	struct defer d = {.ctx = ctx};
	static const int want[] = {10, 11, 12, 20, 30};
	int i;

	d.errors_before = coroutine_error_count();
	assert_int_equal(coroutine_new(defer_a, &d, &d.a), 0);
	assert_int_equal(coroutine_new(defer_b, &d, &d.b), 0);
	assert_int_equal(aio_bh_schedule_oneshot(ctx, defer_bh, &d), 0);
	assert_true(aio_poll(ctx, false));
	assert_int_equal(d.len, 5);
	for (i = 0; i < 5; i++) {
		assert_int_equal(d.log[i], want[i]);
	}
	assert_int_equal(coroutine_error_count(), d.errors_before + 1);
}

/*
 * A coroutine of one context polls another (nested aio_poll), and a BH
 * there wakes a coroutine of that other context. Deferring the wakeup to
 * the running coroutine would enter it, later, in the wrong context.
 */
struct cross_poll {
	struct aio_context *x, *y;
	struct coroutine *a, *b;
	struct aio_context *b_ctx_seen, *b_own_ctx;
	struct coroutine *b_self;
	int b_runs;
};

static void cross_b(void *opaque)
{
	struct cross_poll *c = opaque;

	c->b_runs++;
	c->b_ctx_seen = aio_get_current_context();
	c->b_own_ctx = coroutine_get_context(coroutine_self());
}

static void cross_bh(void *opaque)
{
	struct cross_poll *c = opaque;

	aio_co_enter(c->y, c->b); /* we are in y, inside a coroutine of x */
}

static void cross_a(void *opaque)
{
	struct cross_poll *c = opaque;

	assert_int_equal(aio_bh_schedule_oneshot(c->y, cross_bh, c), 0);
	while (aio_poll(c->y, false)) {
	}
	assert_ptr_equal(aio_get_current_context(), c->x);
}

static void test_co_enter_from_nested_poll(void **state)
{
	struct cross_poll c = {.x = *state};

	assert_int_equal(aio_context_new(&c.y), 0);
	assert_int_equal(coroutine_new(cross_a, &c, &c.a), 0);
	assert_int_equal(coroutine_new(cross_b, &c, &c.b), 0);
	aio_co_schedule(c.x, c.a);
	assert_true(aio_poll(c.x, false));
	while (aio_poll(c.y, false)) { /* in case it was left scheduled in y */
	}
	assert_int_equal(c.b_runs, 1);
	assert_ptr_equal(c.b_ctx_seen, c.y);
	assert_ptr_equal(c.b_own_ctx, c.y);
	assert_int_equal(aio_context_free(c.y), 0);
}

/* aio_co_wake: enters at once where the coroutine's context is held, else schedules. */

struct waiter {
	struct aio_context *ctx;
	struct coroutine *co;
	int runs;
	pthread_t thread;
	struct aio_context *ctx_seen;
	bool held;
	bool done;
};

/*
 * pthread_self() is declared const, so inside a coroutine the compiler may
 * reuse its value across a yield, after which we may run in another
 * thread. Ask in a way it cannot cache.
 */
static __attribute__((noinline)) pthread_t this_thread(void)
{
	__asm__ volatile("" ::: "memory");
	return pthread_self();
}

static void waiter_fn(void *opaque)
{
	struct waiter *w = opaque;

	while (!w->done) {
		w->thread = this_thread();
		w->ctx_seen = aio_get_current_context();
		w->held = w->ctx_seen && aio_context_held(w->ctx_seen);
		/* Release: the fields above are read after wait_runs. */
		__atomic_store_n(&w->runs, w->runs + 1, __ATOMIC_RELEASE);
		coroutine_yield();
	}
}

static void wake_bh(void *opaque)
{
	struct waiter *w = opaque;
	int before = w->runs;

	aio_co_wake(w->co);
	assert_int_equal(w->runs, before + 1); /* entered right here */
}

static void test_co_wake(void **state)
{
	struct aio_context *ctx = *state;
	struct waiter w = {.ctx = ctx};

	assert_int_equal(coroutine_new(waiter_fn, &w, &w.co), 0);
	aio_co_enter(ctx, w.co); /* not in ctx: scheduled */
	assert_int_equal(w.runs, 0);
	assert_true(aio_poll(ctx, false));
	assert_int_equal(w.runs, 1);
	assert_ptr_equal(w.ctx_seen, ctx);
	assert_true(w.held);
	assert_ptr_equal(coroutine_get_context(w.co), ctx);

	aio_co_wake(w.co); /* from outside the context: scheduled, not run */
	assert_int_equal(w.runs, 1);
	assert_true(aio_poll(ctx, false));
	assert_int_equal(w.runs, 2);

	assert_int_equal(aio_bh_schedule_oneshot(ctx, wake_bh, &w), 0);
	assert_true(aio_poll(ctx, false));
	assert_int_equal(w.runs, 3);

	/* While acquired, this thread is in ctx: the wake enters at once. */
	aio_context_acquire(ctx);
	assert_true(aio_context_held(ctx));
	assert_ptr_equal(aio_get_current_context(), ctx);
	aio_co_wake(w.co);
	assert_int_equal(w.runs, 4);
	aio_context_release(ctx);
	assert_false(aio_context_held(ctx));
	assert_null(aio_get_current_context());

	w.done = true;
	aio_co_wake(w.co);
	assert_true(aio_poll(ctx, false));
	assert_int_equal(w.runs, 4);
	assert_false(aio_poll(ctx, false));
}

/* Entering a coroutine from outside its context does not move it there. */
static void test_co_enter_outside_context(void **state)
{
	struct aio_context *ctx = *state;
	unsigned long errors = coroutine_error_count();
	struct waiter w = {.ctx = ctx};

	assert_int_equal(coroutine_new(waiter_fn, &w, &w.co), 0);
	aio_co_schedule(ctx, w.co);
	assert_true(aio_poll(ctx, false));
	assert_int_equal(w.runs, 1);
	coroutine_enter(w.co); /* we are not in ctx */
	assert_int_equal(coroutine_error_count(), errors + 1);
	assert_int_equal(w.runs, 1);
	assert_true(aio_poll(ctx, false)); /* it was scheduled in ctx instead */
	assert_int_equal(w.runs, 2);
	assert_ptr_equal(w.ctx_seen, ctx);
	w.done = true;
	aio_co_wake(w.co);
	assert_true(aio_poll(ctx, false));
}

/* aio_context_free names coroutines that are still scheduled. */
static void test_co_leak_report(void **state)
{
	struct aio_context *ctx;
	struct coroutine *co;
	struct capture cap;
	const char *msg;
	int runs = 0;

	(void)state;
	assert_int_equal(aio_context_new(&ctx), 0);
	assert_int_equal(coroutine_new(count_fn, &runs, &co), 0);
	aio_co_schedule(ctx, co);
	capture_start(&cap);
	assert_int_equal(aio_context_free(ctx), 1);
	msg = capture_end(&cap);
	assert_non_null(strstr(msg, "coroutine 'count_fn' still scheduled (by "
				    "'test_co_leak_report')"));
	assert_int_equal(runs, 0);
	coroutine_delete(co); /* never entered: can be recycled */
}

/* Contexts polled by other threads. */

struct thread_ctx {
	struct iothread *it;
	struct aio_context *ctx;
	pthread_t tid;
	atomic_bool known;
};

static void get_tid_bh(void *opaque)
{
	struct thread_ctx *t = opaque;

	t->tid = pthread_self();
	atomic_store(&t->known, true);
}

static void iothread_setup(struct thread_ctx *t)
{
	memset(t, 0, sizeof(*t));
	assert_int_equal(iothread_new("co-test", &t->it), 0);
	t->ctx = iothread_get_aio_context(t->it);
	/* Learn the iothread's id through a BH it runs. */
	assert_int_equal(aio_bh_schedule_oneshot(t->ctx, get_tid_bh, t), 0);
	while (!atomic_load(&t->known)) {
		sched_yield();
	}
}

static void wait_runs(struct waiter *w, int n)
{
	while (__atomic_load_n(&w->runs, __ATOMIC_ACQUIRE) < n) {
		sched_yield();
	}
}

/*
 * QEMU's bug (fixed by "util/async: use qemu_aio_coroutine_enter in
 * co_schedule_bh_cb"): the coroutine BH of an iothread's context, run by
 * the main thread while it polls that context, entered the coroutine in
 * the main thread's context. Later wakeups then ran it in the main thread.
 * Here the main thread polls the iothread's context from inside a BH of
 * its own context, and the coroutine must stay in the iothread's.
 */
struct foreign {
	struct thread_ctx io;
	struct aio_context *main_ctx;
	struct waiter w;
};

static void foreign_poll_bh(void *opaque)
{
	struct foreign *f = opaque;

	assert_ptr_equal(aio_get_current_context(), f->main_ctx);
	aio_context_acquire(f->io.ctx);
	aio_co_schedule(f->io.ctx, f->w.co); /* the BH path, not a direct enter */
	while (!aio_poll(f->io.ctx, false)) {
	}
	aio_context_release(f->io.ctx);
	assert_ptr_equal(aio_get_current_context(), f->main_ctx);
}

static void test_co_stays_in_own_context(void **state)
{
	struct foreign f = {0};
	struct waiter *w = &f.w;
	pthread_t me = pthread_self();

	f.main_ctx = *state;
	iothread_setup(&f.io);
	w->ctx = f.io.ctx;
	assert_int_equal(coroutine_new(waiter_fn, w, &w->co), 0);

	/* 1. Started in the iothread. */
	aio_co_schedule(f.io.ctx, w->co);
	wait_runs(w, 1);
	assert_true(pthread_equal(w->thread, f.io.tid));
	assert_ptr_equal(w->ctx_seen, f.io.ctx);

	/* 2. Run by the main thread, from a BH of the main context. */
	assert_int_equal(aio_bh_schedule_oneshot(f.main_ctx, foreign_poll_bh, &f), 0);
	assert_true(aio_poll(f.main_ctx, false));
	assert_int_equal(w->runs, 2);
	assert_true(pthread_equal(w->thread, me));
	assert_ptr_equal(w->ctx_seen, f.io.ctx); /* not main_ctx */
	assert_true(w->held);
	assert_ptr_equal(coroutine_get_context(w->co), f.io.ctx);

	/* 3. The next wakeup goes back to the iothread. */
	aio_co_wake(w->co);
	wait_runs(w, 3);
	assert_true(pthread_equal(w->thread, f.io.tid));
	assert_ptr_equal(w->ctx_seen, f.io.ctx);
	assert_true(w->held);
	assert_false(aio_poll(f.main_ctx, false)); /* nothing came to the main context */

	w->done = true;
	aio_co_wake(w->co);
	aio_context_acquire(f.io.ctx);	    /* the last run is over once we hold it... */
	while (aio_poll(f.io.ctx, false)) { /* ...or still queued: run it here */
	}
	aio_context_release(f.io.ctx);
	iothread_destroy(f.io.it);
}

/* A coroutine moves itself between contexts: aio_co_schedule(other, self) + yield. */

struct mover {
	struct aio_context *a, *b;
	pthread_t a_tid, b_tid;
	bool ok_a1, ok_b, ok_a2;
	atomic_bool finished;
};

static bool in_ctx(struct aio_context *ctx, pthread_t tid)
{
	return aio_get_current_context() == ctx && aio_context_held(ctx) &&
	       pthread_equal(this_thread(), tid);
}

static void mover_fn(void *opaque)
{
	struct mover *m = opaque;

	m->ok_a1 = in_ctx(m->a, m->a_tid);
	aio_co_schedule(m->b, coroutine_self());
	coroutine_yield();
	m->ok_b = in_ctx(m->b, m->b_tid) && coroutine_get_context(coroutine_self()) == m->b;
	aio_co_schedule(m->a, coroutine_self());
	coroutine_yield();
	m->ok_a2 = in_ctx(m->a, m->a_tid);
	atomic_store(&m->finished, true);
}

static void test_co_move_between_contexts(void **state)
{
	struct thread_ctx io;
	struct mover m = {0};
	struct coroutine *co;
	unsigned long errors = coroutine_error_count();

	m.a = *state;
	m.a_tid = pthread_self();
	iothread_setup(&io);
	m.b = io.ctx;
	m.b_tid = io.tid;
	assert_int_equal(coroutine_new(mover_fn, &m, &co), 0);
	aio_co_schedule(m.a, co);
	while (!atomic_load(&m.finished)) {
		aio_poll(m.a, true);
	}
	assert_true(m.ok_a1);
	assert_true(m.ok_b);
	assert_true(m.ok_a2);
	assert_int_equal(coroutine_error_count(), errors);
	iothread_destroy(io.it);
}

/* aio_context_acquire: the iothread steps aside while another thread holds its context. */

static void record_thread_bh(void *opaque)
{
	struct waiter *w = opaque;

	w->thread = pthread_self();
	w->held = aio_context_held(w->ctx);
	w->ctx_seen = aio_get_current_context();
	__atomic_add_fetch(&w->runs, 1, __ATOMIC_RELEASE);
}

static void test_acquire_iothread_context(void **state)
{
	struct thread_ctx io;
	struct waiter w = {0};
	struct aio_bh *bh;
	int i;

	(void)state;
	iothread_setup(&io);
	w.ctx = io.ctx;
	bh = aio_bh_new(io.ctx, record_thread_bh, &w);
	assert_non_null(bh);
	for (i = 0; i < 50; i++) {
		aio_context_acquire(io.ctx);
		aio_context_acquire(io.ctx); /* recursive */
		aio_bh_schedule(bh);
		sleep_ns(i % 5 ? 0 : 1000000); /* the iothread must not run it meanwhile */
		assert_int_equal(w.runs, 2 * i);
		assert_true(aio_poll(io.ctx, true));
		assert_int_equal(w.runs, 2 * i + 1);
		assert_true(pthread_equal(w.thread, pthread_self()));
		assert_true(w.held);
		assert_ptr_equal(w.ctx_seen, io.ctx);
		aio_context_release(io.ctx);
		assert_true(aio_context_held(io.ctx));
		aio_context_release(io.ctx);
		assert_false(aio_context_held(io.ctx));
		assert_null(aio_get_current_context());

		aio_bh_schedule(bh); /* now the iothread's again */
		wait_runs(&w, 2 * i + 2);
		assert_true(pthread_equal(w.thread, io.tid));
		assert_ptr_equal(w.ctx_seen, io.ctx);
	}
	aio_context_acquire(io.ctx);
	aio_bh_delete(bh);
	aio_poll(io.ctx, false);
	aio_context_release(io.ctx);
	iothread_destroy(io.it);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_co_enter_yield),
	    cmocka_unit_test(test_co_registers_survive),
	    cmocka_unit_test(test_co_fp_control),
	    cmocka_unit_test(test_co_nesting),
	    cmocka_unit_test(test_co_deep_nesting),
	    cmocka_unit_test(test_co_pool_reuse),
	    cmocka_unit_test(test_co_many_alive),
	    cmocka_unit_test(test_co_stack_too_large),
	    cmocka_unit_test(test_co_stack_exhaustion),
	    cmocka_unit_test(test_co_guard_page),
	    cmocka_unit_test_setup_teardown(test_co_schedule_order, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_co_double_schedule, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_co_enter_deferred, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_co_enter_from_nested_poll, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_co_wake, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_co_enter_outside_context, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test(test_co_leak_report),
	    cmocka_unit_test_setup_teardown(test_co_stays_in_own_context, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test_setup_teardown(test_co_move_between_contexts, aio_test_setup_ctx,
					    aio_test_teardown_ctx),
	    cmocka_unit_test(test_acquire_iothread_context),
	};

	aio_test_init(120);
	return cmocka_run_group_tests_name("coroutine", tests, NULL, NULL);
}
