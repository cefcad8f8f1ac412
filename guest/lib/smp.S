/* SPDX-License-Identifier: MIT */
/*
 * AP start. smp_start() copies [smp_trampoline, smp_trampoline_end) to
 * SMP_TRAMPOLINE_PA and sends INIT-SIPI-SIPI with that page as the vector.
 * The AP starts in real mode at CS:IP = (SMP_TRAMPOLINE_PA >> 4):0 and goes
 * straight to long mode on the BSP's page tables and GDT (setting CR0.PE and
 * CR0.PG in one write is allowed), then takes a CPU index and stack and
 * calls smp_ap_main(index).
 */
#include "cpu.h"

#define TRAMP(sym) ((sym) - smp_trampoline + SMP_TRAMPOLINE_PA)

	.section .rodata
	.code16
	.balign 16
	.globl smp_trampoline
smp_trampoline:
	cli
	xor %ax, %ax
	mov %ax, %ds
	lgdtl TRAMP(tramp_gdtr)
	mov $CR4_BOOT, %eax
	mov %eax, %cr4
	mov $boot_pml4, %eax
	mov %eax, %cr3
	mov $0xc0000080, %ecx		/* EFER */
	rdmsr
	or $0x100, %eax			/* LME */
	wrmsr
	mov $CR0_BOOT, %eax
	mov %eax, %cr0
	ljmpl $SEL_KCODE, $ap_long_entry
	.balign 4
tramp_gdtr:
	.word GDT_SIZE - 1
	.long boot_gdt
	.globl smp_trampoline_end
smp_trampoline_end:

	.text
	.code64
ap_long_entry:
	load_kernel_segments
	mov $1, %eax
	lock xadd %eax, smp_next_index(%rip)
	cmp $GUEST_MAX_CPUS, %eax
	jae 2f				/* more CPUs than we have slots for: park */
	mov %eax, %edi
	imul $KSTACK_SIZE, %eax, %eax
	lea ap_stacks + KSTACK_SIZE(%rax), %rsp
	xor %ebp, %ebp
	cld
	fninit
	call smp_ap_main		/* (unsigned index); never returns */
2:	cli
	hlt
	jmp 2b

	.data
	.balign 4
	.globl smp_next_index
smp_next_index:
	.long 1				/* 0 is the BSP */

	.bss
	.balign 16
ap_stacks:
	.skip KSTACK_SIZE * GUEST_MAX_CPUS	/* slot 0 unused: the BSP has boot_stack */
