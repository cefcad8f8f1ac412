/* SPDX-License-Identifier: MIT */
/*
 * Guest RAM: anonymous mappings registered with KVM as memory slots.
 * RAM below LAYOUT_MMIO32_START is one region at GPA 0; the rest (if any)
 * is a second region at 4 GiB.
 *
 * Every access to guest memory from kvmini goes through guest_mem_ptr() or
 * the read/write helpers: they check bounds and overflow, so a guest-chosen
 * address can never reach outside guest RAM.
 */
#ifndef KVMINI_MEMORY_H
#define KVMINI_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#define GUEST_MEM_MAX_REGIONS 2

struct guest_mem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;
};

struct guest_mem {
	struct guest_mem_region regions[GUEST_MEM_MAX_REGIONS];
	int nregions;
	uint64_t ram_size; /* total bytes of RAM */
};

/*
 * Map @ram_size bytes of RAM (a multiple of 4 KiB, at least 2 MiB). Main
 * thread at startup. Returns 0 or -errno.
 */
int guest_mem_init(struct guest_mem *m, uint64_t ram_size);

/* Unmap. Main thread after every user of the memory has stopped. */
void guest_mem_free(struct guest_mem *m);

/*
 * Host pointer for [gpa, gpa + len) if the whole range lies inside one RAM
 * region, else NULL (also on overflow and len == 0 past the end). Any thread.
 */
void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* Copy to/from guest RAM; -EFAULT if the range is not all RAM. Any thread. */
int guest_mem_read(const struct guest_mem *m, uint64_t gpa, void *dst, uint64_t len);
int guest_mem_write(const struct guest_mem *m, uint64_t gpa, const void *src, uint64_t len);

#endif
