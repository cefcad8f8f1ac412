/* SPDX-License-Identifier: MIT */
/*
 * Iothreads: a thread that owns an AioContext and polls it until
 * iothread_destroy writes its stop eventfd. The stop request travels
 * through the context's own epoll set like any other fd event, so it also
 * wakes a poll that sleeps with no deadline; no pthread_cancel.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "aio/aio_int.h"

struct iothread {
	char name[16];		 /* immutable; thread names are 15 chars max */
	struct aio_context *ctx; /* immutable; owned by the iothread while it runs */
	pthread_t tid;		 /* immutable after iothread_new */
	int stop_fd;		 /* immutable; written by iothread_destroy */
	bool stopping;		 /* iothread only (set by its stop handler) */
};

/* Set once by the main thread before threads exist; read by new threads
 * (pthread_create orders the store before them). */
static aio_thread_hook_fn *aio_thread_hook;

void aio_set_thread_hook(aio_thread_hook_fn *hook)
{
	aio_thread_hook = hook;
}

struct aio_thread_args {
	void *(*fn)(void *);
	void *arg;
	char name[16]; /* thread names are 15 chars max */
	enum aio_thread_kind kind;
};

/* The new thread: it names itself (naming another thread would open its
 * /proc comm file, which a sandboxed creator may not), then the hook. */
static void *aio_thread_trampoline(void *opaque)
{
	struct aio_thread_args a = *(struct aio_thread_args *)opaque;

	free(opaque);
	if (a.name[0]) {
		pthread_setname_np(pthread_self(), a.name); /* cosmetic: ignore failure */
	}
	if (aio_thread_hook) {
		aio_thread_hook(a.kind);
	}
	return a.fn(a.arg);
}

int aio_thread_start(pthread_t *tid, void *(*fn)(void *), void *arg, const char *name,
		     enum aio_thread_kind kind)
{
	struct aio_thread_args *a = calloc(1, sizeof(*a));
	sigset_t all, old;
	int ret;

	if (!a) {
		return -ENOMEM;
	}
	*a = (struct aio_thread_args){.fn = fn, .arg = arg, .kind = kind};
	if (name) {
		snprintf(a->name, sizeof(a->name), "%s", name);
	}
	/* The new thread inherits the mask: block everything across create. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(tid, NULL, aio_thread_trampoline, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		free(a);
	}
	return ret;
}

/* Iothread, from aio_poll. */
static void iothread_stop_cb(void *opaque)
{
	struct iothread *it = opaque;
	uint64_t v;

	if (read(it->stop_fd, &v, sizeof(v)) == sizeof(v)) {
		it->stopping = true;
	}
}

static void *iothread_run(void *opaque)
{
	struct iothread *it = opaque;

	while (!it->stopping) {
		aio_poll(it->ctx, true);
	}
	return NULL;
}

/* Any thread. @name may be NULL. */
int iothread_new(const char *name, struct iothread **out)
{
	struct iothread *it = calloc(1, sizeof(*it));
	int ret;

	if (!it) {
		return -ENOMEM;
	}
	snprintf(it->name, sizeof(it->name), "%s", name ? name : "iothread");
	ret = aio_context_new(&it->ctx);
	if (ret) {
		goto err_free;
	}
	it->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (it->stop_fd < 0) {
		ret = -errno;
		goto err_ctx;
	}
	/* Before the owner starts polling: allowed from this thread. */
	ret = aio_set_fd_handler(it->ctx, it->stop_fd, iothread_stop_cb, NULL, it);
	if (ret) {
		goto err_fd;
	}
	ret = aio_thread_start(&it->tid, iothread_run, it, it->name, AIO_THREAD_IOTHREAD);
	if (ret) {
		goto err_handler;
	}
	*out = it;
	return 0;

err_handler:
	aio_set_fd_handler(it->ctx, it->stop_fd, NULL, NULL, NULL);
err_fd:
	close(it->stop_fd);
err_ctx:
	aio_context_free(it->ctx);
err_free:
	free(it);
	return ret;
}

/* Any thread. */
struct aio_context *iothread_get_aio_context(struct iothread *it)
{
	return it->ctx;
}

/*
 * Any thread but the iothread itself. BHs, handlers and timers that users
 * put in the context must be gone first (aio_context_free reports them).
 */
void iothread_destroy(struct iothread *it)
{
	static const uint64_t one = 1;

	if (!it) {
		return;
	}
	if (write(it->stop_fd, &one, sizeof(one)) != sizeof(one)) {
		/* Only a full counter could fail, and that is readable too. */
		perror("iothread: stop eventfd");
	}
	pthread_join(it->tid, NULL);
	/* Joined: this thread owns the context now. */
	aio_set_fd_handler(it->ctx, it->stop_fd, NULL, NULL, NULL);
	close(it->stop_fd);
	aio_context_free(it->ctx);
	free(it);
}
