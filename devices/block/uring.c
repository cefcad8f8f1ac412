// SPDX-License-Identifier: MIT
/*
 * io_uring through liburing (a static musl build of Debian's liburing
 * source, scripts/build-liburing.sh). One ring per user, used by one thread
 * (the disk's iothread). See devices/block/block.h.
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/block/block.h"

int uring_init(struct uring *u, unsigned entries)
{
	int ret;

	memset(u, 0, sizeof(*u));
	u->fd = u->efd = -1;
	u->ring = calloc(1, sizeof(*u->ring));
	if (!u->ring)
		return -ENOMEM;
	ret = io_uring_queue_init(entries, u->ring, 0);
	if (ret < 0) {
		free(u->ring);
		u->ring = NULL;
		return ret;
	}
	u->fd = u->ring->ring_fd;
	u->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (u->efd < 0) {
		ret = -errno;
		goto fail;
	}
	ret = io_uring_register_eventfd(u->ring, u->efd);
	if (ret < 0)
		goto fail;
	return 0;
fail:
	uring_exit(u);
	return ret;
}

void uring_exit(struct uring *u)
{
	/* Without a ring, fd and efd were never ours: a zeroed struct closes
	 * nothing (not fd 0). */
	if (u->ring) {
		if (u->efd >= 0)
			close(u->efd);
		io_uring_queue_exit(u->ring);
		free(u->ring);
	}
	memset(u, 0, sizeof(*u));
	u->fd = u->efd = -1;
}

bool uring_prep_rw(struct uring *u, bool write, int fd, const struct iovec *iov, unsigned n,
		   uint64_t off, uint64_t user_data)
{
	struct io_uring_sqe *s = io_uring_get_sqe(u->ring);

	if (!s)
		return false;
	if (write)
		io_uring_prep_writev(s, fd, iov, n, off);
	else
		io_uring_prep_readv(s, fd, iov, n, off);
	io_uring_sqe_set_data64(s, user_data);
	return true;
}

int uring_submit(struct uring *u)
{
	int r;

	/* liburing publishes the tail first, so entries a failed enter left
	 * behind go with the next submit; it makes no system call when there is
	 * nothing to submit. */
	do {
		r = io_uring_submit(u->ring);
	} while (r == -EINTR);
	return r;
}

bool uring_has_cqe(const struct uring *u)
{
	return io_uring_cq_ready(u->ring) != 0;
}

unsigned uring_reap(struct uring *u, void (*cb)(void *opaque, uint64_t user_data, int32_t res),
		    void *opaque)
{
	struct io_uring_cqe *c;
	uint64_t cnt;
	unsigned n = 0;

	if (read(u->efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		return 0;
	/* peek also flushes the kernel's overflow list once the ring is empty
	 * (it makes a system call only then). */
	while (io_uring_peek_cqe(u->ring, &c) == 0) {
		uint64_t data = io_uring_cqe_get_data64(c);
		int32_t res = c->res;

		/* Free the slot before @cb, which may submit more. */
		io_uring_cqe_seen(u->ring, c);
		cb(opaque, data, res);
		n++;
	}
	return n;
}
