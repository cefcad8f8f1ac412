// SPDX-License-Identifier: MIT
/* The guest memory map shared by the boot paths; see vmm/e820.h. */
#include "vmm/e820.h"
#include "vmm/layout.h"

static void e820_add(struct e820_entry *e, unsigned *n, uint64_t addr, uint64_t size, uint32_t type)
{
	e[(*n)++] = (struct e820_entry){.addr = addr, .size = size, .type = type};
}

unsigned e820_build(const struct guest_mem *m, struct e820_entry *e)
{
	unsigned n = 0;

	e820_add(e, &n, 0, LAYOUT_LOWMEM_END, E820_TYPE_RAM);
	e820_add(e, &n, LAYOUT_LOWMEM_END, LAYOUT_HIGHMEM - LAYOUT_LOWMEM_END, E820_TYPE_RESERVED);
	e820_add(e, &n, LAYOUT_HIGHMEM, m->regions[0].size - LAYOUT_HIGHMEM, E820_TYPE_RAM);
	e820_add(e, &n, LAYOUT_IOAPIC, 0x1000, E820_TYPE_RESERVED);
	e820_add(e, &n, LAYOUT_LAPIC, 0x1000, E820_TYPE_RESERVED);
	for (int i = 1; i < m->nregions; i++)
		e820_add(e, &n, m->regions[i].gpa, m->regions[i].size, E820_TYPE_RAM);
	return n;
}
