// SPDX-License-Identifier: MIT
/* PIO/MMIO address buses: a sorted range array behind a rwlock. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/bus.h"

int bus_init(struct bus *b, const char *name)
{
	memset(b, 0, sizeof(*b));
	b->name = name;
	return -pthread_rwlock_init(&b->lock, NULL);
}

void bus_destroy(struct bus *b)
{
	free(b->ranges);
	b->ranges = NULL;
	b->nranges = b->cap = 0;
	pthread_rwlock_destroy(&b->lock);
}

/* Index of the first range whose end is above @addr. Caller holds the lock. */
static size_t bus_lower_bound(const struct bus *b, uint64_t addr)
{
	size_t lo = 0, hi = b->nranges;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &b->ranges[mid];

		if (r->base + r->len <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int bus_register(struct bus *b, uint64_t base, uint64_t len, bus_io_fn *fn, void *opaque,
		 const char *name, struct errbuf *err)
{
	size_t i;
	int ret = 0;

	if (len == 0 || base + len < base)
		return err_set(err, EINVAL, "%s: bad %s range 0x%llx+0x%llx", name, b->name,
			       (unsigned long long)base, (unsigned long long)len);

	pthread_rwlock_wrlock(&b->lock);
	i = bus_lower_bound(b, base);
	if (i < b->nranges && b->ranges[i].base < base + len) {
		const struct bus_range *o = &b->ranges[i];

		ret = err_set(
		    err, EEXIST, "%s: %s range 0x%llx-0x%llx overlaps %s at 0x%llx-0x%llx", name,
		    b->name, (unsigned long long)base, (unsigned long long)(base + len - 1),
		    o->name, (unsigned long long)o->base,
		    (unsigned long long)(o->base + o->len - 1));
		goto out;
	}
	if (b->nranges == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		struct bus_range *n = realloc(b->ranges, cap * sizeof(*n));

		if (!n) {
			ret = err_set(err, ENOMEM, "%s: out of memory", name);
			goto out;
		}
		b->ranges = n;
		b->cap = cap;
	}
	memmove(&b->ranges[i + 1], &b->ranges[i], (b->nranges - i) * sizeof(b->ranges[0]));
	b->ranges[i] =
	    (struct bus_range){.base = base, .len = len, .fn = fn, .opaque = opaque, .name = name};
	b->nranges++;
out:
	pthread_rwlock_unlock(&b->lock);
	return ret;
}

int bus_unregister(struct bus *b, uint64_t base)
{
	size_t i;
	int ret = -ENOENT;

	pthread_rwlock_wrlock(&b->lock);
	i = bus_lower_bound(b, base);
	if (i < b->nranges && b->ranges[i].base == base) {
		memmove(&b->ranges[i], &b->ranges[i + 1],
			(b->nranges - i - 1) * sizeof(b->ranges[0]));
		b->nranges--;
		ret = 0;
	}
	pthread_rwlock_unlock(&b->lock);
	return ret;
}

bool bus_dispatch(struct bus *b, uint64_t addr, void *data, uint32_t len, bool is_write)
{
	struct bus_range r;
	bool found = false;
	size_t i;

	pthread_rwlock_rdlock(&b->lock);
	i = bus_lower_bound(b, addr);
	if (i < b->nranges && b->ranges[i].base <= addr && len <= b->ranges[i].len &&
	    addr - b->ranges[i].base <= b->ranges[i].len - len) {
		r = b->ranges[i];
		found = true;
	}
	pthread_rwlock_unlock(&b->lock);
	/* Called unlocked: a device may (un)register ranges from its callback. */
	if (found)
		r.fn(r.opaque, addr - r.base, data, len, is_write);
	return found;
}
