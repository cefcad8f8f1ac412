// SPDX-License-Identifier: MIT
/* Adds uncached 2 MiB identity mappings above 4 GiB to the boot page tables. */
#include "guest.h"
#include "page.h"

#define PTE_P	  0x001ull
#define PTE_W	  0x002ull
#define PTE_U	  0x004ull
#define PTE_PWT	  0x008ull
#define PTE_PCD	  0x010ull
#define PTE_A	  0x020ull
#define PTE_D	  0x040ull
#define PTE_PS	  0x080ull
#define PTE_ADDR  0x000ffffffffff000ull
#define PTE_TABLE (PTE_P | PTE_W | PTE_U | PTE_A)
#define PTE_2M_UC (PTE_P | PTE_W | PTE_U | PTE_A | PTE_D | PTE_PS | PTE_PCD | PTE_PWT)
#define PAGE_2M	  0x200000ull

/* The table that entry @e points to, creating an empty one if absent. */
static uint64_t *table_at(uint64_t *e)
{
	if (!(*e & PTE_P)) {
		uint64_t *t = mem_alloc(4096, 4096);
		if (!t)
			return NULL;
		memset(t, 0, 4096);
		*e = (uint64_t)t | PTE_TABLE;
	}
	return (uint64_t *)(*e & PTE_ADDR);
}

int page_map_mmio(uint64_t addr, uint64_t len)
{
	uint64_t end = addr + len;

	if (len == 0 || end < addr || end > (1ull << 47))
		return -EINVAL;
	for (uint64_t p = addr & ~(PAGE_2M - 1); p < end; p += PAGE_2M) {
		if (p < GUEST_MAPPED_END)
			continue;
		uint64_t *pdpt = table_at(&boot_pml4[(p >> 39) & 511]);
		uint64_t *pd = pdpt ? table_at(&pdpt[(p >> 30) & 511]) : NULL;
		if (!pd)
			return -ENOMEM;
		pd[(p >> 21) & 511] = p | PTE_2M_UC;
	}
	/* New entries replace not-present ones, which are never cached; the
	 * reload is for the paging-structure caches of intermediate levels. */
	__asm__ volatile("mov %%cr3, %%rax; mov %%rax, %%cr3" ::: "rax", "memory");
	return 0;
}
