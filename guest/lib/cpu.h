/* SPDX-License-Identifier: MIT */
/*
 * CPU setup shared by entry.S and C: segment selectors, per-CPU data, the
 * fixed addresses guest/lib uses. Included from assembly too, so everything
 * C-only is under !__ASSEMBLER__.
 */
#ifndef GUEST_CPU_H
#define GUEST_CPU_H

#define GUEST_MAX_CPUS 32

/* GDT layout (entry.S builds it as initialized data; TSS slots filled by cpu_init). */
#define SEL_KCODE 0x08 /* 64-bit kernel code */
#define SEL_KDATA 0x10 /* kernel data/stack */
#define SEL_UDATA 0x18 /* user data/stack, used with RPL 3 */
#define SEL_UCODE 0x20 /* 64-bit user code, used with RPL 3 */
#define SEL_TSS0  0x28 /* TSS of CPU i at SEL_TSS0 + 16 * i */
#define GDT_SIZE  (SEL_TSS0 + 16 * GUEST_MAX_CPUS)

#define KSTACK_SIZE    16384 /* CPL0 stack of the BSP (boot) and of each AP */
#define TRAPSTACK_SIZE 8192  /* TSS.rsp0: exceptions taken at CPL3 run here */
#define USTACK_SIZE    65536 /* default CPL3 stack of user_call, per CPU */

/* Real-mode AP start page: below 1 MiB, page aligned, outside the PVH boot
 * structures kvmini puts at [0x1000, 0x3000). */
#define SMP_TRAMPOLINE_PA 0x8000

/* Offsets in struct cpu, used by entry.S (checked by _Static_assert in cpu.c). */
#define CPU_OFF_SELF	   0
#define CPU_OFF_KERNEL_RSP 8
#define CPU_OFF_USTACK_TOP 16

#define CR0_BOOT 0x80010023 /* PG | WP | NE | MP | PE; EM clear so SSE works */
#define CR4_BOOT 0x00000620 /* OSXMMEXCPT | OSFXSR | PAE */

#ifdef __ASSEMBLER__
/* clang-format off */
/* First thing in long mode (BSP and APs): flat kernel data segments, and
 * null FS/GS selectors (cpu_init then sets the GS base by MSR). */
.macro load_kernel_segments
	mov $SEL_KDATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	xor %eax, %eax
	mov %eax, %fs
	mov %eax, %gs
.endm
/* clang-format on */
#else
#include <stdint.h>

struct tss64 {
	uint32_t reserved0;
	uint64_t rsp0, rsp1, rsp2;
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base; /* >= limit: no I/O bitmap, IOPL alone decides */
} __attribute__((packed));

/* One per CPU; GS base points at it (we never swapgs, so it holds at CPL3 too). */
struct cpu {
	struct cpu *self;    /* CPU_OFF_SELF: lets this_cpu() read %gs:0 */
	uint64_t kernel_rsp; /* CPU_OFF_KERNEL_RSP: CPL0 rsp saved by user_call */
	uint64_t ustack_top; /* CPU_OFF_USTACK_TOP: user_call's CPL3 stack */
	uint32_t index;	     /* 0 = BSP, then APs in the order they came up */
	uint32_t apic_id;
	struct tss64 tss;
};

/* This CPU's struct cpu. Any CPL, after cpu_init. */
static inline struct cpu *this_cpu(void)
{
	struct cpu *c;
	__asm__ volatile("mov %%gs:0, %0" : "=r"(c));
	return c;
}

/* Index of the calling CPU (0 = BSP). */
static inline unsigned int cpu_index(void)
{
	return this_cpu()->index;
}

/*
 * Per-CPU setup at CPL0, called once on each CPU before anything else in C
 * uses this_cpu(): GS base, this CPU's TSS (rsp0 = its trap stack) and TSS
 * descriptor, ltr, lidt. The BSP also fills the IDT (cpu_init with index 0
 * must run before any AP's).
 */
void cpu_init(unsigned int index);

/* Struct of CPU @index (0 <= index < GUEST_MAX_CPUS). */
struct cpu *cpu_get(unsigned int index);

/* Symbols defined by entry.S. */
extern uint64_t boot_pml4[512];
extern uint8_t boot_gdt[GDT_SIZE];
#endif

#endif
