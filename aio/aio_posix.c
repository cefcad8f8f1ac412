/* SPDX-License-Identifier: MIT */
/*
 * aio_poll on epoll: fd handlers, the notifier eventfd, and the sleep side
 * of the wakeup protocol (docs/aio.md; labels as in aio_int.h).
 *
 * Handlers are owner-thread state. A handler removed while any aio_poll
 * frame is running is only marked deleted (an outer frame may still hold
 * it in its event batch) and freed when the outermost frame returns.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "aio/aio_int.h"

#define AIO_MAX_EVENTS 64

/* Read side: data, hangup, error. Write side: room, error, hangup. */
#define AIO_EV_READ  (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)
#define AIO_EV_WRITE (EPOLLOUT | EPOLLHUP | EPOLLERR)

/* Owner or before the owner starts. */
int aio_posix_init(struct aio_context *ctx)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	int ret;

	ctx->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (ctx->epoll_fd < 0) {
		return -errno;
	}
	ctx->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ctx->event_fd < 0) {
		ret = -errno;
		goto err_epoll;
	}
	/* data.ptr == NULL marks the notifier; handlers are never NULL. */
	if (epoll_ctl(ctx->epoll_fd, EPOLL_CTL_ADD, ctx->event_fd, &ev)) {
		ret = -errno;
		goto err_eventfd;
	}
	return 0;

err_eventfd:
	close(ctx->event_fd);
err_epoll:
	close(ctx->epoll_fd);
	return ret;
}

/* Owner, from aio_context_free. */
void aio_posix_cleanup(struct aio_context *ctx)
{
	struct aio_handler *h, *next;

	for (h = ctx->handlers; h; h = next) {
		next = h->next;
		if (!h->deleted) {
			fprintf(stderr, "aio: fd %d still has a handler at aio_context_free\n",
				h->fd);
		}
		free(h);
	}
	ctx->handlers = NULL;
	close(ctx->event_fd);
	close(ctx->epoll_fd);
}

static struct aio_handler *find_handler(struct aio_context *ctx, int fd)
{
	struct aio_handler *h;

	for (h = ctx->handlers; h; h = h->next) {
		if (h->fd == fd && !h->deleted) {
			return h;
		}
	}
	return NULL;
}

static void free_deleted_handlers(struct aio_context *ctx)
{
	struct aio_handler **pp = &ctx->handlers;

	while (*pp) {
		struct aio_handler *h = *pp;

		if (h->deleted) {
			*pp = h->next;
			free(h);
		} else {
			pp = &h->next;
		}
	}
	ctx->handlers_deleted = false;
}

static uint32_t handler_events(aio_fd_fn *io_read, aio_fd_fn *io_write)
{
	return (io_read ? EPOLLIN | EPOLLRDHUP : 0) | (io_write ? EPOLLOUT : 0);
}

/* Owner thread (or before the owner starts polling). */
int aio_set_fd_handler(struct aio_context *ctx, int fd, aio_fd_fn *io_read, aio_fd_fn *io_write,
		       void *opaque)
{
	struct epoll_event ev = {.events = handler_events(io_read, io_write)};
	struct aio_handler *h;

	if (fd < 0) {
		return -EBADF;
	}
	h = find_handler(ctx, fd);
	if (!io_read && !io_write) {
		if (!h) {
			return 0;
		}
		/* Fails harmlessly if the fd was closed already (epoll dropped it). */
		epoll_ctl(ctx->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
		ctx->nr_handlers--;
		h->deleted = true;
		if (ctx->depth) {
			ctx->handlers_deleted = true; /* an aio_poll frame may hold it */
		} else {
			free_deleted_handlers(ctx);
		}
		return 0;
	}
	if (h) {
		ev.data.ptr = h;
		if (epoll_ctl(ctx->epoll_fd, EPOLL_CTL_MOD, fd, &ev)) {
			return -errno;
		}
		h->io_read = io_read;
		h->io_write = io_write;
		h->opaque = opaque;
		return 0;
	}

	h = calloc(1, sizeof(*h));
	if (!h) {
		return -ENOMEM;
	}
	h->fd = fd;
	h->io_read = io_read;
	h->io_write = io_write;
	h->opaque = opaque;
	ev.data.ptr = h;
	if (epoll_ctl(ctx->epoll_fd, EPOLL_CTL_ADD, fd, &ev)) {
		int ret = -errno;

		free(h);
		return ret;
	}
	h->next = ctx->handlers;
	ctx->handlers = h;
	ctx->nr_handlers++;
	return 0;
}

int64_t aio_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* epoll_pwait2 (ns timeout) is Linux 5.11+; remember if it is missing. */
static atomic_bool have_no_pwait2;

/* Owner thread. Waits up to @timeout ns (-1: forever). Returns events or 0. */
static int aio_epoll_wait(struct aio_context *ctx, struct epoll_event *evs, int64_t timeout)
{
	int n;

	if (timeout > 0 && !atomic_load_explicit(&have_no_pwait2, memory_order_relaxed)) {
#ifdef SYS_epoll_pwait2
		struct timespec ts = {.tv_sec = timeout / 1000000000LL,
				      .tv_nsec = timeout % 1000000000LL};

		n = syscall(SYS_epoll_pwait2, ctx->epoll_fd, evs, AIO_MAX_EVENTS, &ts, NULL, 0);
		if (n >= 0 || errno != ENOSYS) {
			return n < 0 ? 0 : n;
		}
#endif
		atomic_store_explicit(&have_no_pwait2, true, memory_order_relaxed);
	}
	if (timeout > 0) {
		/* Round up: waking early would just spin until the deadline. */
		int64_t ms = (timeout + 999999) / 1000000;

		n = epoll_wait(ctx->epoll_fd, evs, AIO_MAX_EVENTS,
			       ms > INT_MAX ? INT_MAX : (int)ms);
	} else {
		n = epoll_wait(ctx->epoll_fd, evs, AIO_MAX_EVENTS, timeout < 0 ? -1 : 0);
	}
	return n < 0 ? 0 : n; /* EINTR: a spurious wakeup, the caller loops */
}

/*
 * Owner thread, with notify_me raised [W1]. How long the coming wait may
 * last: 0 if anything is ready or a notification is pending.
 */
static int64_t aio_compute_timeout(struct aio_context *ctx)
{
	struct aio_bh *head;
	int64_t timeout;

	/* seq_cst load after [W1]: the other half of the [W1]/[N2] pairing. */
	if (atomic_load_explicit(&ctx->notified, memory_order_seq_cst)) {
		return 0;
	}
	AIO_PREEMPT_POINT();
	timeout = aio_bh_timeout(ctx, &head);
	if (timeout == 0) {
		return 0;
	}
	timeout = aio_min_timeout(timeout, aio_timers_timeout(ctx));
	if (timeout < 0 || timeout > AIO_IDLE_BH_NS) {
		/*
		 * [L1] seq_cst store, then re-read the list head. Pairs with
		 * [I1]: an idle BH pushed after our scan either shows up in
		 * the head below, or its scheduler sees long_sleep and wakes
		 * us. Only pushes change the head while we are here (taking
		 * the list is ours), so an unchanged head means nothing new.
		 */
		atomic_store_explicit(&ctx->long_sleep, true, memory_order_seq_cst);
		AIO_PREEMPT_POINT();
		if (atomic_load_explicit(&ctx->bh_list, memory_order_seq_cst) != head) {
			timeout = aio_min_timeout(timeout, aio_bh_timeout(ctx, &head));
		}
	}
	return timeout;
}

static void aio_notifier_clear(struct aio_context *ctx)
{
	uint64_t v;
	ssize_t r = read(ctx->event_fd, &v, sizeof(v)); /* EAGAIN: already clear */

	(void)r;
}

static bool aio_dispatch_handler(struct aio_handler *h)
{
	uint32_t revents = h->revents;
	bool progress = false;

	h->revents = 0; /* a nested poll that dispatched it first left 0 here */
	if (!h->deleted && (revents & AIO_EV_READ) && h->io_read) {
		h->io_read(h->opaque);
		progress = true;
	}
	/* The read callback may have removed or changed the handler. */
	if (!h->deleted && (revents & AIO_EV_WRITE) && h->io_write) {
		h->io_write(h->opaque);
		progress = true;
	}
	return progress;
}

/*
 * The holder (or a thread that becomes it: aio_context_hold waits while
 * another thread holds the context); nests.
 */
bool aio_poll(struct aio_context *ctx, bool blocking)
{
	struct epoll_event evs[AIO_MAX_EVENTS];
	bool progress = false;
	int64_t timeout = 0;
	unsigned me = 0;
	int i, n = 0;
	bool locked = aio_context_hold(ctx);
	struct aio_context *prev_ctx = aio_set_current_context(ctx);

	ctx->depth++;
	if (blocking) {
		me = atomic_load_explicit(&ctx->notify_me, memory_order_relaxed);
		/*
		 * [W1] seq_cst store (only the owner writes notify_me, so no
		 * RMW is needed). Pairs with [N2] in aio_notify: from here on
		 * a notifier either sees us sleeping and kicks the eventfd,
		 * or we see its notified/BH in aio_compute_timeout.
		 */
		atomic_store_explicit(&ctx->notify_me, me + 1, memory_order_seq_cst);
		AIO_PREEMPT_POINT();
		timeout = aio_compute_timeout(ctx);
		AIO_PREEMPT_POINT();
	}

	/* Nothing to sleep on and no fd to look at: skip the syscall. */
	if (timeout != 0 || ctx->nr_handlers) {
		n = aio_epoll_wait(ctx, evs, timeout);
	}

	if (blocking) {
		/*
		 * No ordering needed: a notifier that still sees the raised
		 * value only makes a spurious eventfd write, which the next
		 * wait consumes.
		 */
		atomic_store_explicit(&ctx->long_sleep, false, memory_order_relaxed);
		atomic_store_explicit(&ctx->notify_me, me, memory_order_relaxed);
		AIO_PREEMPT_POINT();
		aio_notify_accept(ctx); /* [A1] */
		AIO_PREEMPT_POINT();
	}

	for (i = 0; i < n; i++) {
		struct aio_handler *h = evs[i].data.ptr;

		if (h) {
			h->revents |= evs[i].events;
		} else {
			aio_notifier_clear(ctx); /* a bare notify is not progress */
		}
	}

	progress |= aio_bh_poll(ctx);
	for (i = 0; i < n; i++) {
		struct aio_handler *h = evs[i].data.ptr;

		if (h) {
			progress |= aio_dispatch_handler(h);
		}
	}
	progress |= aio_timers_run(ctx);

	if (--ctx->depth == 0 && ctx->handlers_deleted) {
		free_deleted_handlers(ctx);
	}
	aio_set_current_context(prev_ctx);
	aio_context_unhold(ctx, locked);
	return progress;
}
