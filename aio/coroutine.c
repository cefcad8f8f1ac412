/* SPDX-License-Identifier: MIT */
/*
 * Coroutines: stacks, the pool, the x86_64 stack switch, enter and yield,
 * and the sanitizer fiber annotations. aio_co.c ties them to AioContexts.
 *
 * musl has no makecontext/swapcontext, so the switch is ours: a small
 * assembly function saves the callee-saved registers of the SysV ABI
 * (rbx, rbp, r12-r15) plus the MXCSR and x87 control words (also
 * callee-saved in that ABI) on the current stack, stores rsp, loads the
 * other stack's rsp and restores the same set from there. To the compiler
 * it is an ordinary call, so caller-saved registers are its business.
 *
 * A coroutine's body runs in co_main, which loops: when fn returns, the
 * coroutine switches back to its caller for the last time and is parked
 * there; a recycled coroutine is resumed at that point and calls its new
 * fn. So reuse from the pool costs no stack setup.
 *
 * Threads. A coroutine runs in one thread at a time but may resume in a
 * different one (its context changed holder while it was suspended). So
 * the code below that runs on a coroutine's stack after a switch never
 * uses a thread-local address computed before it: thread-local state is
 * reached through co_thread(), which is not inlined and is opaque to the
 * optimizer. The enter loop runs on the enterer's stack, which does not
 * change thread while it waits for the coroutine to switch back.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "aio/aio_int.h"

#if defined(__SANITIZE_THREAD__)
#define CO_TSAN 1
#elif defined(__SANITIZE_ADDRESS__)
#define CO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CO_TSAN 1
#elif __has_feature(address_sanitizer)
#define CO_ASAN 1
#endif
#endif

#ifdef CO_TSAN
#include <sanitizer/tsan_interface.h>
#endif
#ifdef CO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

/*
 * co_main and co_switch_out stay on a coroutine's stack across its last
 * switch, when its ASan fake stack is destroyed, and run again when the
 * coroutine is recycled: their locals must live on the real stack, so
 * ASan does not instrument them (nor may they be inlined into code it does).
 */
#ifdef CO_ASAN
#define CO_REAL_STACK_FRAME __attribute__((noinline, no_sanitize_address))
#else
#define CO_REAL_STACK_FRAME
#endif

#define CO_MIN_STACK	   (16 * 1024)
#define CO_POOL_LOCAL_MAX  64  /* per thread */
#define CO_POOL_GLOBAL_MAX 256 /* process-wide, for threads that create more than they end */
#define CO_POOL_BATCH	   16  /* taken from the global pool at once */

/*
 * void co_switch_stack(void **save_sp, void *load_sp)
 *
 * Frame left on a stack that is switched out (lowest address first):
 *   [0] MXCSR (4 bytes), x87 control word (2 bytes), padding
 *   [1] r15 [2] r14 [3] r13 [4] r12 [5] rbx [6] rbp [7] return address
 * co_init_frame builds the same frame for a new coroutine, "returning"
 * into co_trampoline with r12 = the coroutine and r13 = co_main.
 */
void co_switch_stack(void **save_sp, void *load_sp) __asm__("kvmini_co_switch_stack");
void co_trampoline(void) __asm__("kvmini_co_trampoline");

__asm__(".text\n"
	".p2align 4\n"
	".globl kvmini_co_switch_stack\n"
	".hidden kvmini_co_switch_stack\n"
	".type kvmini_co_switch_stack, @function\n"
	"kvmini_co_switch_stack:\n"
	"	pushq %rbp\n"
	"	pushq %rbx\n"
	"	pushq %r12\n"
	"	pushq %r13\n"
	"	pushq %r14\n"
	"	pushq %r15\n"
	"	subq $8, %rsp\n"
	"	stmxcsr (%rsp)\n"
	"	fnstcw 4(%rsp)\n"
	"	movq %rsp, (%rdi)\n"
	"	movq %rsi, %rsp\n"
	"	ldmxcsr (%rsp)\n"
	"	fldcw 4(%rsp)\n"
	"	addq $8, %rsp\n"
	"	popq %r15\n"
	"	popq %r14\n"
	"	popq %r13\n"
	"	popq %r12\n"
	"	popq %rbx\n"
	"	popq %rbp\n"
	"	ret\n"
	".size kvmini_co_switch_stack, .-kvmini_co_switch_stack\n"
	"\n"
	/*
	 * Entered by the ret above with rsp 16-byte aligned, so co_main
	 * starts with the alignment a call gives. It never returns; the
	 * undefined return address ends backtraces here.
	 */
	".p2align 4\n"
	".globl kvmini_co_trampoline\n"
	".hidden kvmini_co_trampoline\n"
	".type kvmini_co_trampoline, @function\n"
	"kvmini_co_trampoline:\n"
	"	.cfi_startproc\n"
	"	.cfi_undefined rip\n"
	"	movq %r12, %rdi\n"
	"	callq *%r13\n"
	"	ud2\n"
	"	.cfi_endproc\n"
	".size kvmini_co_trampoline, .-kvmini_co_trampoline\n");

enum { CO_FRAME_SLOTS = 10 }; /* 8 used, 2 keep the trampoline's rsp aligned */

/* Per-thread state: reached only through co_thread(). */
struct co_thread {
	struct coroutine leader;   /* stands for the thread's own stack */
	struct coroutine *current; /* the running coroutine, or NULL */
	struct coroutine *pool;	   /* recycled coroutines, LIFO */
	unsigned pool_len;
	bool key_set; /* the exit destructor will hand the pool on */
};

static __thread struct co_thread co_tls;

static pthread_mutex_t co_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct coroutine *co_pool_global; /* co_pool_lock */
static unsigned co_pool_global_len;	 /* co_pool_lock */
static pthread_once_t co_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t co_key;
static bool co_key_ok; /* written once under co_key_once */

static atomic_uint co_nr_stacks;  /* mapped stacks, for messages */
static atomic_ulong co_nr_errors; /* misuse reports */
static size_t co_page_size;	  /* written once under co_key_once */

/*
 * The calling thread's state. Not inlined, and its result is opaque to the
 * optimizer, so a caller that switches stacks in between calls it again
 * instead of reusing an address from the thread it ran on before.
 */
static __attribute__((noinline)) struct co_thread *co_thread(void)
{
	struct co_thread *t = &co_tls;

	__asm__ volatile("" : "+r"(t));
	return t;
}

static void co_free(struct coroutine *co)
{
#ifdef CO_TSAN
	if (co->tsan_fiber) {
		__tsan_destroy_fiber(co->tsan_fiber);
	}
#endif
#ifdef CO_ASAN
	/* Frames parked on the stack leave poisoned shadow; a later mapping there must not see it.
	 */
	__asan_unpoison_memory_region(co->stack_lo, co->stack_size);
#endif
	munmap(co->map, co->map_size);
	free(co);
	atomic_fetch_sub_explicit(&co_nr_stacks, 1, memory_order_relaxed);
}

/* Park @co in the process-wide pool, or free it when that pool is full. */
static void co_pool_global_put(struct coroutine *co)
{
	pthread_mutex_lock(&co_pool_lock);
	if (co_pool_global_len < CO_POOL_GLOBAL_MAX) {
		co->pool_next = co_pool_global;
		co_pool_global = co;
		co_pool_global_len++;
		co = NULL;
	}
	pthread_mutex_unlock(&co_pool_lock);
	if (co) {
		co_free(co);
	}
}

/* Thread exit: hand this thread's pool to the process-wide one. */
static void co_thread_exit(void *opaque)
{
	struct co_thread *t = opaque;
	struct coroutine *co;

	while ((co = t->pool)) {
		t->pool = co->pool_next;
		t->pool_len--;
		co_pool_global_put(co);
	}
}

static void co_once(void)
{
	long page = sysconf(_SC_PAGESIZE);

	co_page_size = page > 0 ? (size_t)page : 4096;
	co_key_ok = pthread_key_create(&co_key, co_thread_exit) == 0;
}

/* Any thread: a pooled default-size coroutine, or NULL. */
static struct coroutine *co_pool_get(void)
{
	struct co_thread *t = co_thread();
	struct coroutine *co;

	if (!t->pool) {
		unsigned n = 0;

		pthread_mutex_lock(&co_pool_lock);
		while (co_pool_global && n < CO_POOL_BATCH) {
			co = co_pool_global;
			co_pool_global = co->pool_next;
			co_pool_global_len--;
			co->pool_next = t->pool;
			t->pool = co;
			n++;
		}
		pthread_mutex_unlock(&co_pool_lock);
		t->pool_len += n;
	}
	co = t->pool;
	if (co) {
		t->pool = co->pool_next;
		t->pool_len--;
	}
	return co;
}

/* Any thread: recycle a coroutine that is not running and not scheduled. */
static void co_recycle(struct coroutine *co)
{
	struct co_thread *t = co_thread();

	atomic_store_explicit(&co->live, false, memory_order_relaxed);
	co->fn = NULL;
	co->opaque = NULL;
	if (co->stack_size != COROUTINE_STACK_SIZE) {
		co_free(co);
		return;
	}
	if (!t->key_set && co_key_ok) {
		t->key_set = pthread_setspecific(co_key, t) == 0;
	}
	if (t->key_set && t->pool_len < CO_POOL_LOCAL_MAX) {
		co->pool_next = t->pool;
		t->pool = co;
		t->pool_len++;
		return;
	}
	co_pool_global_put(co);
}

void coroutine_pool_drain(void)
{
	struct co_thread *t = co_thread();
	struct coroutine *list, *co;

	while ((co = t->pool)) {
		t->pool = co->pool_next;
		co_free(co);
	}
	t->pool_len = 0;
	pthread_mutex_lock(&co_pool_lock);
	list = co_pool_global;
	co_pool_global = NULL;
	co_pool_global_len = 0;
	pthread_mutex_unlock(&co_pool_lock);
	while ((co = list)) {
		list = co->pool_next;
		co_free(co);
	}
}

/* MXCSR and x87 control word, as co_switch_stack stores them. */
static uint64_t co_fp_control(void)
{
	uint32_t mxcsr;
	uint16_t fpucw;

	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
	__asm__ volatile("fnstcw %0" : "=m"(fpucw));
	return mxcsr | (uint64_t)fpucw << 32;
}

static void co_main(struct coroutine *self) __attribute__((noreturn));

/*
 * A new stack's first frame, as co_switch_stack leaves one: it "returns"
 * into co_trampoline, which calls co_main(co). The floating-point control
 * state is the creator's, as a new thread inherits its creator's.
 */
static void co_init_frame(struct coroutine *co)
{
	uint64_t *top = (uint64_t *)((char *)co->stack_lo + co->stack_size);
	uint64_t *sp = top - CO_FRAME_SLOTS;

	memset(sp, 0, CO_FRAME_SLOTS * sizeof(*sp));
	sp[0] = co_fp_control();
	sp[3] = (uintptr_t)co_main; /* r13 */
	sp[4] = (uintptr_t)co;	    /* r12 */
	sp[6] = 0;		    /* rbp: ends frame-pointer walks */
	sp[7] = (uintptr_t)co_trampoline;
	co->sp = sp;
}

/* A new coroutine with its own stack mapping; -ENOMEM with a message. */
static int co_alloc(size_t stack_size, const char *name, struct coroutine **out)
{
	size_t page = co_page_size;
	struct coroutine *co;
	void *map;
	int err;

	co = calloc(1, sizeof(*co));
	if (!co) {
		fprintf(stderr, "coroutine: no memory for coroutine '%s'\n", name);
		return -ENOMEM;
	}
	/* One PROT_NONE page below the stack turns an overflow into SIGSEGV. */
	map = mmap(NULL, stack_size + page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (map == MAP_FAILED) {
		err = errno;
		goto err_free;
	}
	if (mprotect(map, page, PROT_NONE)) {
		err = errno;
		munmap(map, stack_size + page);
		goto err_free;
	}
	co->map = map;
	co->map_size = stack_size + page;
	co->stack_lo = (char *)map + page;
	co->stack_size = stack_size;
	co_init_frame(co);
	atomic_fetch_add_explicit(&co_nr_stacks, 1, memory_order_relaxed);
	*out = co;
	return 0;

err_free:
	fprintf(stderr,
		"coroutine: cannot map a %zu KiB stack (+ guard page) for coroutine '%s': %s "
		"(%u coroutine stacks mapped)\n",
		stack_size / 1024, name, strerror(err),
		atomic_load_explicit(&co_nr_stacks, memory_order_relaxed));
	free(co);
	return -ENOMEM;
}

int coroutine_new_sized_named(coroutine_fn *fn, void *opaque, size_t stack_size, const char *name,
			      struct coroutine **out)
{
	struct coroutine *co = NULL;
	size_t page;
	int ret;

	if (!fn || !out) {
		return -EINVAL;
	}
	pthread_once(&co_key_once, co_once);
	page = co_page_size;
	if (stack_size > SIZE_MAX / 2) {
		fprintf(stderr, "coroutine: stack of %zu bytes for coroutine '%s' is too large\n",
			stack_size, name);
		return -ENOMEM;
	}
	stack_size = (stack_size + page - 1) & ~(page - 1);
	if (stack_size < CO_MIN_STACK) {
		stack_size = CO_MIN_STACK;
	}
	if (stack_size == COROUTINE_STACK_SIZE) {
		co = co_pool_get();
	}
	if (!co) {
		ret = co_alloc(stack_size, name, &co);
		if (ret) {
			return ret;
		}
	}
	co->fn = fn;
	co->opaque = opaque;
	co->name = name;
	co->caller = NULL;
	co->terminated = false;
	co->started = false;
	co->resched_ctx = NULL;
	co->wake_head = NULL;
	co->wake_tail = &co->wake_head;
	co->wake_next = NULL;
	atomic_store_explicit(&co->ctx, NULL, memory_order_relaxed);
	atomic_store_explicit(&co->scheduled, NULL, memory_order_relaxed);
	atomic_store_explicit(&co->running, false, memory_order_relaxed);
	atomic_store_explicit(&co->live, true, memory_order_relaxed);
#ifdef CO_TSAN
	if (co->tsan_fiber) {
		__tsan_set_fiber_name(co->tsan_fiber, name);
	}
#endif
	*out = co;
	return 0;
}

int coroutine_new_named(coroutine_fn *fn, void *opaque, const char *name, struct coroutine **out)
{
	return coroutine_new_sized_named(fn, opaque, COROUTINE_STACK_SIZE, name, out);
}

void coroutine_delete(struct coroutine *co)
{
	if (!co) {
		return;
	}
	if (!atomic_load_explicit(&co->live, memory_order_relaxed)) {
		coroutine_report("coroutine_delete: coroutine %p was deleted or returned already: "
				 "not deleted again",
				 (void *)co);
		return;
	}
	if (co->started || atomic_load_explicit(&co->scheduled, memory_order_acquire)) {
		coroutine_report("coroutine_delete: coroutine '%s' was %s: not deleted", co->name,
				 co->started ? "entered already" : "scheduled");
		return;
	}
	co_recycle(co);
}

void coroutine_report(const char *fmt, ...)
{
	char buf[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "coroutine: %s\n", buf);
	atomic_fetch_add_explicit(&co_nr_errors, 1, memory_order_relaxed);
}

unsigned long coroutine_error_count(void)
{
	return atomic_load_explicit(&co_nr_errors, memory_order_relaxed);
}

struct coroutine *coroutine_self(void)
{
	return co_thread()->current;
}

struct aio_context *coroutine_get_context(struct coroutine *co)
{
	return atomic_load_explicit(&co->ctx, memory_order_acquire);
}

const char *coroutine_name(struct coroutine *co)
{
	return co->name;
}

/*
 * Enterer side: switch from @from (the thread's stack or a running parent
 * coroutine) into @to. Returns when @to yields or returns.
 */
static void co_switch_in(struct coroutine *from, struct coroutine *to)
{
#ifdef CO_TSAN
	if (!to->tsan_fiber) {
		to->tsan_fiber = __tsan_create_fiber(0);
		__tsan_set_fiber_name(to->tsan_fiber, to->name);
	}
	to->tsan_caller = __tsan_get_current_fiber();
	/* Flags 0: the switch synchronizes, as the hand-over really does. */
	__tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
#ifdef CO_ASAN
	void *fake_stack = NULL;

	__sanitizer_start_switch_fiber(&fake_stack, to->stack_lo, to->stack_size);
#endif
	co_switch_stack(&from->sp, to->sp);
#ifdef CO_ASAN
	__sanitizer_finish_switch_fiber(fake_stack, NULL, NULL);
#endif
}

/*
 * Coroutine side: switch back to whoever entered @self. Returns when an
 * enter loop resumes @self, possibly in another thread. @ending: @self's
 * fn has returned (its sanitizer fake stack can go).
 */
static CO_REAL_STACK_FRAME void co_switch_out(struct coroutine *self, bool ending)
{
	struct coroutine *to = self->caller;

#ifdef CO_TSAN
	__tsan_switch_to_fiber(self->tsan_caller, 0);
#endif
#ifdef CO_ASAN
	void *fake_stack = NULL;

	__sanitizer_start_switch_fiber(ending ? NULL : &fake_stack, self->asan_caller_lo,
				       self->asan_caller_size);
#endif
	co_switch_stack(&self->sp, to->sp);
#ifdef CO_ASAN
	/* Resumed: remember the enterer's stack for the way back. */
	__sanitizer_finish_switch_fiber(fake_stack, &self->asan_caller_lo, &self->asan_caller_size);
#endif
	(void)ending;
}

static CO_REAL_STACK_FRAME void co_main(struct coroutine *self)
{
#ifdef CO_ASAN
	__sanitizer_finish_switch_fiber(NULL, &self->asan_caller_lo, &self->asan_caller_size);
#endif
	for (;;) {
		self->fn(self->opaque);
		self->terminated = true;
		co_switch_out(self, true);
		/* Recycled by the pool and entered again with a new fn. */
	}
}

void coroutine_yield(void)
{
	struct coroutine *self = coroutine_self();

	if (!self) {
		fprintf(stderr, "coroutine: coroutine_yield called outside a coroutine\n");
		abort();
	}
	co_switch_out(self, false);
}

/*
 * Enterer thread: may @to be entered now? Reports and refuses a coroutine
 * that has returned, is running, or (unless @queued, i.e. handed over by
 * the one that scheduled it) is scheduled. A queued coroutine's
 * `scheduled` mark is cleared here, just before it runs.
 */
static bool co_claim(struct coroutine *to, bool queued, const char *caller)
{
	const char *sched = atomic_load_explicit(&to->scheduled, memory_order_acquire);
	bool expect = false;

	if (queued) {
		caller = sched;
	}
	if (!atomic_load_explicit(&to->live, memory_order_relaxed)) {
		coroutine_report("coroutine %p entered by '%s' after it returned: not entered",
				 (void *)to, caller);
		return false;
	}
	if (!queued && sched) {
		coroutine_report(
		    "coroutine '%s' entered by '%s' while scheduled by '%s': not entered "
		    "now, it runs when its schedule comes",
		    to->name, caller, sched);
		return false;
	}
	/*
	 * Acquire: pairs with the release in co_finish by the loop that last
	 * switched @to out (maybe in another thread): its stack pointer and
	 * everything it did are visible before we switch in.
	 */
	if (!atomic_compare_exchange_strong_explicit(&to->running, &expect, true,
						     memory_order_acquire, memory_order_relaxed)) {
		coroutine_report("coroutine '%s' entered by '%s' while it is running: not entered",
				 to->name, caller);
		if (queued) {
			atomic_store_explicit(&to->scheduled, NULL, memory_order_release);
		}
		return false;
	}
	if (queued) {
		/*
		 * Release: our earlier read of to->sched_next (by the co BH)
		 * is done before a new scheduler may win the CAS and rewrite
		 * it. Pairs with the acq_rel CAS in aio_co_schedule_from.
		 */
		atomic_store_explicit(&to->scheduled, NULL, memory_order_release);
	}
	return true;
}

/*
 * Enterer thread, after @to switched back: take what it queued, then
 * recycle it if it returned or mark it enterable again.
 */
static void co_finish(struct coroutine *to, struct coroutine **pending)
{
	struct aio_context *resched = to->resched_ctx;

	/* Woken from inside @to: they run next, before older pending ones. */
	if (to->wake_head) {
		*to->wake_tail = *pending;
		*pending = to->wake_head;
		to->wake_head = NULL;
		to->wake_tail = &to->wake_head;
	}
	to->resched_ctx = NULL;
	if (to->terminated) {
		if (resched) {
			coroutine_report(
			    "coroutine '%s' returned while scheduled by '%s': dropped", to->name,
			    atomic_load_explicit(&to->scheduled, memory_order_relaxed));
			atomic_store_explicit(&to->scheduled, NULL, memory_order_relaxed);
		}
		atomic_store_explicit(&to->running, false, memory_order_relaxed);
		co_recycle(to);
		return;
	}
	/* Release: pairs with the acquire CAS in co_claim (next enter). */
	atomic_store_explicit(&to->running, false, memory_order_release);
	if (resched) {
		aio_co_push(resched, to); /* it scheduled itself: now it has yielded */
	}
}

void coroutine_enter_loop(struct aio_context *ctx, struct coroutine *co, bool queued,
			  const char *caller)
{
	struct co_thread *t = co_thread(); /* our stack stays in this thread */
	struct coroutine *from = t->current ? t->current : &t->leader;
	struct coroutine *pending = NULL;
	struct coroutine *to = co;

	t->leader.thread_leader = true;
	if (!co_claim(to, queued, caller)) {
		return;
	}
	for (;;) {
		to->caller = from;
		to->started = true;
		/* Release: pairs with the acquire in aio_co_wake_from. */
		atomic_store_explicit(&to->ctx, ctx, memory_order_release);
		t->current = to;
		co_switch_in(from, to);
		t->current = from->thread_leader ? NULL : from;
		co_finish(to, &pending);

		do {
			to = pending;
			if (!to) {
				return;
			}
			pending = to->wake_next;
			to->wake_next = NULL;
		} while (!co_claim(to, true, NULL));
	}
}

void coroutine_enter_from(struct coroutine *co, const char *caller)
{
	struct aio_context *ctx = aio_get_current_context();
	struct aio_context *own = atomic_load_explicit(&co->ctx, memory_order_acquire);

	/* A scheduled one is refused by co_claim (and not scheduled twice). */
	if (own && own != ctx && !atomic_load_explicit(&co->scheduled, memory_order_relaxed)) {
		/* Entering it here would move it out of its context. */
		coroutine_report(
		    "coroutine '%s' entered by '%s' outside its own context: scheduled "
		    "there instead",
		    co->name, caller);
		aio_co_schedule_from(own, co, caller);
		return;
	}
	coroutine_enter_loop(ctx, co, false, caller);
}
