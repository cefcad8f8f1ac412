/* SPDX-License-Identifier: MIT */
/*
 * The guest memory map (e820 style) that every boot path hands the guest:
 * PVH's hvm_start_info memmap and the Linux boot_params e820 table are both
 * converted from e820_build()'s one list, so the two boot paths can never
 * disagree about what is RAM.
 */
#ifndef KVMINI_E820_H
#define KVMINI_E820_H

#include <stdint.h>

#include "vmm/memory.h"

#define E820_TYPE_RAM	   1
#define E820_TYPE_RESERVED 2

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* E820_TYPE_* */
};

/* The most entries e820_build() ever returns. */
#define E820_MAX_ENTRIES (5 + GUEST_MEM_MAX_REGIONS - 1)

/*
 * Fill @e (E820_MAX_ENTRIES long) with the memory map of @m, in address
 * order (low = RAM below LAYOUT_MMIO32_START), and return the number of
 * entries:
 *   [0, LAYOUT_LOWMEM_END)                    RAM (includes kvmini's boot
 *                                             structures: the guest owns them
 *                                             once it has read them)
 *   [LAYOUT_LOWMEM_END, LAYOUT_HIGHMEM)       reserved (legacy VGA/ROM area, by
 *                                             PC convention; no device there)
 *   [LAYOUT_HIGHMEM, end of low)              RAM
 *   [LAYOUT_IOAPIC, +4 KiB)                   reserved
 *   [LAYOUT_LAPIC, +4 KiB)                    reserved
 *   [LAYOUT_MMIO32_END, + RAM above 4 GiB)    RAM, if any
 * The rest of the PCI hole is left out so that guests see it as free for
 * PCI BARs. @m must have low RAM above LAYOUT_HIGHMEM (the loaders check).
 * Any thread; reads @m's region table only.
 */
unsigned e820_build(const struct guest_mem *m, struct e820_entry *e);

#endif
