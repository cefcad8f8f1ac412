// SPDX-License-Identifier: MIT
/*
 * A minimal io_uring through raw syscalls (no liburing: kvmini is a static
 * musl binary and Debian has no musl liburing). One ring per user, used by
 * one thread (the disk's iothread). See devices/block/block.h.
 */
#include <errno.h>
#include <linux/io_uring.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "devices/block/block.h"

static void *uring_map(int fd, size_t len, off_t what)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, what);

	return p == MAP_FAILED ? NULL : p;
}

int uring_init(struct uring *u, unsigned entries)
{
	struct io_uring_params p;
	int ret;

	memset(u, 0, sizeof(*u));
	u->fd = u->efd = -1;
	memset(&p, 0, sizeof(p));
	u->fd = (int)syscall(__NR_io_uring_setup, entries, &p);
	if (u->fd < 0)
		return -errno;
	u->sq_len = p.sq_off.array + p.sq_entries * sizeof(uint32_t);
	u->cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	u->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
	u->sq_ring = uring_map(u->fd, u->sq_len, IORING_OFF_SQ_RING);
	u->cq_ring = uring_map(u->fd, u->cq_len, IORING_OFF_CQ_RING);
	u->sqes = uring_map(u->fd, u->sqes_len, IORING_OFF_SQES);
	if (!u->sq_ring || !u->cq_ring || !u->sqes) {
		ret = -ENOMEM;
		goto fail;
	}
	u->sq_tail = (uint32_t *)((uint8_t *)u->sq_ring + p.sq_off.tail);
	u->sq_head = (uint32_t *)((uint8_t *)u->sq_ring + p.sq_off.head);
	u->sq_array = (uint32_t *)((uint8_t *)u->sq_ring + p.sq_off.array);
	u->sq_mask = *(uint32_t *)((uint8_t *)u->sq_ring + p.sq_off.ring_mask);
	u->sq_entries = p.sq_entries;
	u->cq_head = (uint32_t *)((uint8_t *)u->cq_ring + p.cq_off.head);
	u->cq_tail = (uint32_t *)((uint8_t *)u->cq_ring + p.cq_off.tail);
	u->cq_mask = *(uint32_t *)((uint8_t *)u->cq_ring + p.cq_off.ring_mask);
	u->cqes = (struct io_uring_cqe *)((uint8_t *)u->cq_ring + p.cq_off.cqes);
	u->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (u->efd < 0) {
		ret = -errno;
		goto fail;
	}
	if (syscall(__NR_io_uring_register, u->fd, IORING_REGISTER_EVENTFD, &u->efd, 1) < 0) {
		ret = -errno;
		goto fail;
	}
	u->sq_local_tail = *u->sq_tail;
	return 0;
fail:
	uring_exit(u);
	return ret;
}

void uring_exit(struct uring *u)
{
	if (u->sqes)
		munmap(u->sqes, u->sqes_len);
	if (u->cq_ring)
		munmap(u->cq_ring, u->cq_len);
	if (u->sq_ring)
		munmap(u->sq_ring, u->sq_len);
	if (u->efd >= 0)
		close(u->efd);
	if (u->fd >= 0)
		close(u->fd);
	memset(u, 0, sizeof(*u));
	u->fd = u->efd = -1;
}

bool uring_prep_rw(struct uring *u, bool write, int fd, const struct iovec *iov, unsigned n,
		   uint64_t off, uint64_t user_data)
{
	/* Acquire: the kernel's store of sq_head (entries it consumed) comes
	 * before we reuse those slots. */
	uint32_t head = __atomic_load_n(u->sq_head, __ATOMIC_ACQUIRE);
	uint32_t t = u->sq_local_tail, i = t & u->sq_mask;
	struct io_uring_sqe *s;

	if (t - head >= u->sq_entries)
		return false;
	s = &u->sqes[i];
	memset(s, 0, sizeof(*s));
	s->opcode = write ? IORING_OP_WRITEV : IORING_OP_READV;
	s->fd = fd;
	s->addr = (uint64_t)(uintptr_t)iov;
	s->len = n;
	s->off = off;
	s->user_data = user_data;
	u->sq_array[i] = i;
	u->sq_local_tail = t + 1;
	return true;
}

int uring_submit(struct uring *u)
{
	/* Everything the kernel has not consumed yet, including entries a
	 * failed earlier enter left behind. */
	uint32_t n = u->sq_local_tail - __atomic_load_n(u->sq_head, __ATOMIC_ACQUIRE);
	long r;

	if (!n)
		return 0;
	/* Release: the SQEs and array entries are written before the tail the
	 * kernel reads with acquire. */
	__atomic_store_n(u->sq_tail, u->sq_local_tail, __ATOMIC_RELEASE);
	do {
		r = syscall(__NR_io_uring_enter, u->fd, n, 0, 0, NULL, 0);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : (int)r;
}

unsigned uring_reap(struct uring *u, void (*cb)(void *opaque, uint64_t user_data, int32_t res),
		    void *opaque)
{
	uint64_t cnt;
	unsigned n = 0;
	uint32_t head, tail;

	if (read(u->efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		return 0;
	head = *u->cq_head;
	/* Acquire: pairs with the kernel's release store of cq_tail after it
	 * filled the CQEs. */
	tail = __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE);
	while (head != tail) {
		const struct io_uring_cqe *c = &u->cqes[head & u->cq_mask];
		uint64_t data = c->user_data;
		int32_t res = c->res;

		head++;
		/* Release: we are done reading the CQE before the kernel may
		 * reuse its slot. */
		__atomic_store_n(u->cq_head, head, __ATOMIC_RELEASE);
		cb(opaque, data, res);
		n++;
		tail = __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE);
	}
	return n;
}
