/* SPDX-License-Identifier: MIT */
/*
 * Scatter-gather helpers over struct iovec (iov.c). Pure, any thread.
 */
#ifndef KVMINI_IOV_H
#define KVMINI_IOV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Copy up to @len bytes out of / into an iovec array at byte @off; returns
 * the bytes copied. */
size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len);
size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t off, const void *buf, size_t len);
/* Copy the iovecs covering [off, off + len) of @src (@n of them) into @dst;
 * returns how many. */
unsigned iov_slice(const struct iovec *src, unsigned n, uint64_t off, uint64_t len,
		   struct iovec *dst);
/* Consume @n bytes from iov[@pos...] (which must hold them): returns the
 * first iovec left, trimmed in place (a transfer that stopped short). */
unsigned iov_skip(struct iovec *iov, unsigned pos, uint64_t n);

#endif
