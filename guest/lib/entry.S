/* SPDX-License-Identifier: MIT */
/*
 * PVH entry: 32-bit protected mode, paging off, %ebx = physical address of
 * struct hvm_start_info. We switch to 64-bit long mode on page tables that
 * are initialized data in this image (no CPL0 loop builds them: CPL0 code is
 * emulated on our hosts, so the entry path is a few dozen instructions), then
 * call boot_main(start_info_pa) in C.
 */
#include "cpu.h"

#define MSR_EFER_NUM             0xc0000080
#define XEN_ELFNOTE_GUEST_OS     6
#define XEN_ELFNOTE_PHYS32_ENTRY 18

/*
 * The PVH note: a 4-byte physical entry address. QEMU 7.2 reads this
 * descriptor as 8 bytes from a 64-bit ELF and truncates it to 32 bits, so a
 * second note follows to keep that read inside the PT_NOTE segment.
 */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4, 4, XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.long pvh_start32
	.balign 4
	.long 4, 2f - 1f, XEN_ELFNOTE_GUEST_OS
	.asciz "Xen"
1:	.asciz "kvmini-guest"
2:	.balign 4

	.section .text.entry, "ax"
	.code32
	.globl pvh_start32
pvh_start32:
	cli
	mov %ebx, %edi			/* boot_main's argument; kept until the call */
	lgdt boot_gdtr
	mov $boot_pml4, %eax
	mov %eax, %cr3
	mov $CR4_BOOT, %eax
	mov %eax, %cr4
	mov $MSR_EFER_NUM, %ecx
	rdmsr
	or $0x100, %eax			/* EFER.LME */
	wrmsr
	mov $CR0_BOOT, %eax
	mov %eax, %cr0			/* paging on: now in IA-32e compatibility mode */
	ljmp $SEL_KCODE, $long_entry

	.code64
long_entry:
	load_kernel_segments
	mov $boot_stack_top, %rsp
	xor %ebp, %ebp
	cld
	fninit				/* MXCSR is 0x1f80 from reset; ldmxcsr is not emulated at CPL0 here */
	call boot_main			/* (uint32_t start_info_pa in %edi); never returns */
1:	cli
	hlt
	jmp 1b

/*
 * GDT: constant descriptors, then one 16-byte TSS slot per CPU that
 * cpu_init() fills (a TSS base cannot be split into descriptor fields by the
 * assembler).
 */
	.data
	.balign 16
	.globl boot_gdt
boot_gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* SEL_KCODE: 64-bit, DPL0 */
	.quad 0x00cf92000000ffff	/* SEL_KDATA: DPL0 */
	.quad 0x00cff2000000ffff	/* SEL_UDATA: DPL3 */
	.quad 0x00affa000000ffff	/* SEL_UCODE: 64-bit, DPL3 */
	.fill 2 * GUEST_MAX_CPUS, 8, 0	/* TSS slots */
boot_gdt_end:

	.balign 8
	.globl boot_gdtr
boot_gdtr:
	.word boot_gdt_end - boot_gdt - 1
	.quad boot_gdt			/* 32-bit lgdt reads the low half only */

/*
 * Identity map of [0, 4 GiB) with 2 MiB pages, all user-accessible (CPL3
 * code runs on the same map; see docs/guest-abi.md). Nothing above 4 GiB is
 * mapped. [3 GiB, 4 GiB) is the MMIO hole (LAPIC, IOAPIC, PCI BARs): uncached.
 * Accessed/dirty bits are preset so the CPU never needs to write them.
 */
#define PTE_P   0x001
#define PTE_W   0x002
#define PTE_U   0x004
#define PTE_PWT 0x008
#define PTE_PCD 0x010
#define PTE_A   0x020
#define PTE_D   0x040
#define PTE_PS  0x080
#define PTE_TABLE (PTE_P | PTE_W | PTE_U | PTE_A)
#define PTE_2M    (PTE_P | PTE_W | PTE_U | PTE_A | PTE_D | PTE_PS)

	.balign 4096
	.globl boot_pml4
boot_pml4:
	.quad boot_pdpt + PTE_TABLE
	.fill 511, 8, 0
boot_pdpt:
	.quad boot_pd + 0 * 4096 + PTE_TABLE
	.quad boot_pd + 1 * 4096 + PTE_TABLE
	.quad boot_pd + 2 * 4096 + PTE_TABLE
	.quad boot_pd + 3 * 4096 + PTE_TABLE
	.fill 508, 8, 0
boot_pd:
	.set i, 0
	.rept 2048
	.if i < 1536
	.quad (i << 21) | PTE_2M
	.else
	.quad (i << 21) | PTE_2M | PTE_PCD | PTE_PWT
	.endif
	.set i, i + 1
	.endr

	.bss
	.balign 16
boot_stack:
	.skip KSTACK_SIZE
	.globl boot_stack_top
boot_stack_top:
