/* SPDX-License-Identifier: MIT */
/*
 * PIO and MMIO buses: address ranges mapped to device callbacks.
 * Registration refuses overlapping ranges. Lookups (vCPU threads) and
 * (un)registration (any thread, e.g. a vCPU remapping a PCI BAR) are
 * serialised by the bus's rwlock; a callback runs without the bus lock held,
 * so a device must do its own locking.
 */
#ifndef KVMINI_BUS_H
#define KVMINI_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/util.h"

/* @offset is relative to the range's base; @data holds @len bytes (1..8). */
typedef void bus_io_fn(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write);

struct bus_range {
	uint64_t base;
	uint64_t len;
	bus_io_fn *fn;
	void *opaque;
	const char *name;
};

struct bus {
	const char *name; /* "pio" or "mmio", for messages */
	pthread_rwlock_t lock;
	struct bus_range *ranges; /* sorted by base; protected by lock */
	size_t nranges, cap;
};

/* Init/destroy: main thread, no concurrent users. */
int bus_init(struct bus *b, const char *name);
void bus_destroy(struct bus *b);

/*
 * Map [base, base + len) to @fn. -EINVAL for len 0 or a range that wraps,
 * -EEXIST (message names both devices) if it overlaps a registered range.
 */
int bus_register(struct bus *b, uint64_t base, uint64_t len, bus_io_fn *fn, void *opaque,
		 const char *name, struct errbuf *err);

/* Remove the range that starts at @base; -ENOENT if none. */
int bus_unregister(struct bus *b, uint64_t base);

/*
 * Deliver an access to the range containing [addr, addr + len). Returns
 * false if no single range contains it (the caller applies the default:
 * reads see all-ones, writes are dropped). vCPU threads.
 */
bool bus_dispatch(struct bus *b, uint64_t addr, void *data, uint32_t len, bool is_write);

#endif
