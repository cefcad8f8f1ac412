// SPDX-License-Identifier: MIT
/* Per-CPU state: struct cpu, TSS, trap and user stacks; cpu_init. */
#include <stddef.h>

#include "cpu.h"
#include "guest.h"
#include "smp.h"
#include "trap.h"
#include "x86.h"

_Static_assert(offsetof(struct cpu, self) == CPU_OFF_SELF, "entry.S offsets");
_Static_assert(offsetof(struct cpu, kernel_rsp) == CPU_OFF_KERNEL_RSP, "entry.S offsets");
_Static_assert(offsetof(struct cpu, ustack_top) == CPU_OFF_USTACK_TOP, "entry.S offsets");
_Static_assert(sizeof(struct tss64) == 104, "TSS layout");

static struct cpu cpus[GUEST_MAX_CPUS];
static uint8_t trap_stacks[GUEST_MAX_CPUS][TRAPSTACK_SIZE] __attribute__((aligned(16)));
static uint8_t user_stacks[GUEST_MAX_CPUS][USTACK_SIZE] __attribute__((aligned(16)));

struct cpu *cpu_get(unsigned int index)
{
	return &cpus[index];
}

/* The 16-byte 64-bit TSS descriptor for @c in its GDT slot. */
static void tss_descriptor_set(unsigned int index, const struct tss64 *tss)
{
	uint64_t base = (uint64_t)tss, limit = sizeof(*tss) - 1;
	uint64_t *d = (uint64_t *)(boot_gdt + SEL_TSS0 + 16 * index);

	d[0] = (limit & 0xffff) | (base & 0xffffff) << 16 | 0x89ull << 40 | /* P, 64-bit TSS */
	       ((limit >> 16) & 0xf) << 48 | ((base >> 24) & 0xff) << 56;
	d[1] = base >> 32;
}

void cpu_init(unsigned int index)
{
	struct cpu *c = &cpus[index];
	uint16_t tr = SEL_TSS0 + 16 * index;

	c->self = c;
	c->index = index;
	c->ustack_top = (uint64_t)user_stacks[index] + USTACK_SIZE;
	c->tss.rsp0 = (uint64_t)trap_stacks[index] + TRAPSTACK_SIZE;
	c->tss.iomap_base = sizeof(c->tss);
	wrmsr(MSR_GS_BASE, (uint64_t)c);
	tss_descriptor_set(index, &c->tss);
	__asm__ volatile("ltr %0" : : "r"(tr));
	if (index == 0)
		trap_init();
	__asm__ volatile("lidt %0" : : "m"(trap_idt_ptr));
	c->apic_id = lapic_id();
}
