/* SPDX-License-Identifier: MIT */
/*
 * Guest RAM: anonymous mappings registered with KVM as memory slots, or,
 * when another process must see it (a vhost-user backend), one memfd
 * mapped shared whose descriptor can be passed over a UNIX socket.
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
	int fd;		    /* shared RAM: the memfd (same for every region), else -1 */
	uint64_t fd_offset; /* where the region starts in fd */
};

struct guest_mem {
	struct guest_mem_region regions[GUEST_MEM_MAX_REGIONS];
	int nregions;
	uint64_t ram_size; /* total bytes of RAM */
};

#define GUEST_MEM_MIN_RAM (2ULL << 20)
#define GUEST_MEM_MAX_RAM (1ULL << 40) /* 1 TiB: anything larger is a typo */

/*
 * Map @ram_size bytes of zeroed RAM (anonymous, MAP_NORESERVE: pages are
 * only allocated when touched). Main thread at startup; registering the
 * regions with KVM is the caller's job. Returns 0, or -EINVAL if @ram_size
 * is below GUEST_MEM_MIN_RAM or not a multiple of 4 KiB, -ERANGE above
 * GUEST_MEM_MAX_RAM, -ENOMEM (or mmap's errno) if the host refuses; on
 * error *@m is left empty (nregions 0) and guest_mem_free() is harmless.
 */
int guest_mem_init(struct guest_mem *m, uint64_t ram_size);

/*
 * Same, but RAM is one memfd (sealed against shrinking) mapped MAP_SHARED,
 * region i at regions[i].fd_offset, so that a vhost-user backend can map
 * it too. Pages are still allocated only when touched, but they are shmem
 * pages: they count against the memfd (tmpfs) and memory cgroup, not as
 * anonymous memory, and are not freed by the kernel under pressure unless
 * swapped. Same errors as guest_mem_init plus memfd_create's.
 */
int guest_mem_init_shared(struct guest_mem *m, uint64_t ram_size);

/* Unmap (and close the memfd of) and empty *@m; harmless on an empty or already freed guest_mem.
 * Main thread after every user of the memory has stopped. */
void guest_mem_free(struct guest_mem *m);

/*
 * Host pointer for [gpa, gpa + len) if the whole range lies inside one RAM
 * region, else NULL: ranges that cross from one region into the PCI hole or
 * the other region, or wrap around 2^64, are NULL. len == 0 is treated as
 * len == 1 (a pointer only if @gpa itself is RAM). Any thread.
 */
void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* Copy to/from guest RAM; -EFAULT if guest_mem_ptr(m, gpa, len) would be
 * NULL (nothing is copied then). Any thread. */
int guest_mem_read(const struct guest_mem *m, uint64_t gpa, void *dst, uint64_t len);
int guest_mem_write(const struct guest_mem *m, uint64_t gpa, const void *src, uint64_t len);

#endif
