/* SPDX-License-Identifier: MIT */
/*
 * What the kernel loader targets (fuzz_load_NAME.c) share: one guest RAM
 * for the whole run, as the loaders see it in a VM. A loader target is one
 * file plus `FUZZ_LOADERS += NAME` in tests/fuzz/fuzz.mk (docs/testing.md).
 */
#ifndef KVMINI_FUZZ_LOADER_H
#define KVMINI_FUZZ_LOADER_H

#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "vmm/memory.h"

#define FUZZ_LOADER_RAM (8ULL << 20)

/* The guest RAM (FUZZ_LOADER_RAM at GPA 0), made on first use. */
static inline struct guest_mem *fuzz_loader_ram(void)
{
	static struct guest_mem m;

	if (!m.nregions && guest_mem_init(&m, FUZZ_LOADER_RAM) < 0)
		fuzz_fail("guest_mem_init");
	return &m;
}

/* Zero [lo, hi) again after a load: the next input starts from clean RAM.
 * A load that claims a range outside RAM fails the run. */
static inline void fuzz_loader_clear(uint64_t lo, uint64_t hi)
{
	void *p = hi > lo ? guest_mem_ptr(fuzz_loader_ram(), lo, hi - lo) : NULL;

	if (hi > lo && !p)
		fuzz_fail("loaded range [%#llx, %#llx) is not RAM", (unsigned long long)lo,
			  (unsigned long long)hi);
	if (p)
		memset(p, 0, hi - lo);
}

/* The input as a loader gets it: a heap copy of exactly @size bytes (so
 * ASan sees reads past it), whose last *@initrd_len bytes (a length taken
 * from the input's last two bytes) are also handed over as the initrd.
 * The caller frees the copy. */
static inline uint8_t *fuzz_loader_image(const uint8_t *data, size_t size, size_t *initrd_len)
{
	uint8_t *image = malloc(size ? size : 1);

	if (!image)
		fuzz_fail("out of memory");
	memcpy(image, data, size);
	*initrd_len = size > 2 ? (data[size - 1] | data[size - 2] << 8) % size : 0;
	return image;
}

#endif
