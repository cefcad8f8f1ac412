/* SPDX-License-Identifier: MIT */
/*
 * Mapping MMIO above 4 GiB. The boot identity map (entry.S) covers
 * [0, 4 GiB) only; a VMM may place 64-bit PCI BARs above RAM, beyond it.
 */
#ifndef GUEST_PAGE_H
#define GUEST_PAGE_H

#include <stdint.h>

/*
 * Identity-map [addr, addr + len) uncached (2 MiB pages, user-accessible
 * like the rest of the map), adding page-table pages from mem_alloc. Parts
 * below 4 GiB are already mapped and left alone. CPL0 (reloads CR3), one
 * CPU at a time, before other CPUs use the range. Returns 0, -EINVAL (empty,
 * wrapping, or beyond 48-bit addresses) or -ENOMEM.
 */
int page_map_mmio(uint64_t addr, uint64_t len);

#endif
