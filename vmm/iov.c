// SPDX-License-Identifier: MIT
/*
 * Scatter-gather helpers over struct iovec, shared by the virtqueue code and
 * the block layer. Pure: no guest addresses here, only host pointers that a
 * checked helper produced.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "vmm/iov.h"

/* Copy between [off, off + len) of an iovec array and @buf, either way. */
static size_t iov_copy(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len,
		       bool into_iov)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		uint8_t *p;
		size_t l;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		p = (uint8_t *)iov[i].iov_base + off;
		l = iov[i].iov_len - off;
		if (l > len - done)
			l = len - done;
		if (into_iov)
			memcpy(p, (uint8_t *)buf + done, l);
		else
			memcpy((uint8_t *)buf + done, p, l);
		done += l;
		off = 0;
	}
	return done;
}

size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len)
{
	return iov_copy(iov, n, off, buf, len, false);
}

size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t off, const void *buf, size_t len)
{
	return iov_copy(iov, n, off, (void *)buf, len, true);
}

unsigned iov_slice(const struct iovec *src, unsigned n, uint64_t off, uint64_t len,
		   struct iovec *dst)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n && len; i++) {
		uint64_t l;

		if (off >= src[i].iov_len) {
			off -= src[i].iov_len;
			continue;
		}
		l = src[i].iov_len - off;
		if (l > len)
			l = len;
		dst[k].iov_base = (uint8_t *)src[i].iov_base + off;
		dst[k].iov_len = l;
		k++;
		len -= l;
		off = 0;
	}
	return k;
}

unsigned iov_skip(struct iovec *iov, unsigned pos, uint64_t n)
{
	while (n && n >= iov[pos].iov_len) {
		n -= iov[pos].iov_len;
		pos++;
	}
	if (n) {
		iov[pos].iov_base = (uint8_t *)iov[pos].iov_base + n;
		iov[pos].iov_len -= n;
	}
	return pos;
}
