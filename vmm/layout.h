/* SPDX-License-Identifier: MIT */
/*
 * Guest physical layout that kvmini establishes for every guest (see
 * docs/guest-abi.md). Guests may use low memory below 0xa0000 freely once
 * they have read hvm_start_info, except that the structures below must not
 * be overwritten before then.
 */
#ifndef KVMINI_LAYOUT_H
#define KVMINI_LAYOUT_H

/* kvmini's own boot structures: [LAYOUT_BOOT_START, LAYOUT_BOOT_END). */
#define LAYOUT_BOOT_START  0x1000ULL
#define LAYOUT_GDT	   0x1000ULL /* flat 32-bit GDT used at PVH entry */
#define LAYOUT_START_INFO  0x1100ULL /* struct hvm_start_info */
#define LAYOUT_MODLIST	   0x1200ULL /* struct hvm_modlist_entry[1] (initrd) */
#define LAYOUT_MEMMAP	   0x1400ULL /* struct hvm_memmap_table_entry[] */
#define LAYOUT_MEMMAP_MAX  64
#define LAYOUT_CMDLINE	   0x2000ULL /* NUL-terminated */
#define LAYOUT_CMDLINE_MAX 4096ULL   /* including the NUL */
#define LAYOUT_BOOT_END	   0x3000ULL

/*
 * The Linux boot path's structures (vmm/bzimage.h), apart from PVH's:
 * [LAYOUT_LINUX_START, LAYOUT_LINUX_END), every one rewritten at each boot.
 * The kernel itself goes at 1 MiB or above; below 1 MiB Linux reserves
 * what it has not copied yet.
 */
#define LAYOUT_LINUX_START	 0x6000ULL
#define LAYOUT_LINUX_GDT	 0x6000ULL /* 64-bit GDT: __BOOT_CS 0x10, __BOOT_DS 0x18 */
#define LAYOUT_ZERO_PAGE	 0x7000ULL /* struct boot_params, 4 KiB */
#define LAYOUT_LINUX_PML4	 0x9000ULL /* identity map of [0, 4 GiB), 2 MiB pages: */
#define LAYOUT_LINUX_PDPT	 0xa000ULL /*   one PML4, one PDPT, */
#define LAYOUT_LINUX_PD		 0xb000ULL /*   four page directories */
#define LAYOUT_LINUX_PT_END	 0xf000ULL
#define LAYOUT_LINUX_CMDLINE	 0x20000ULL /* NUL-terminated */
#define LAYOUT_LINUX_CMDLINE_MAX 0x10000ULL /* including the NUL */
#define LAYOUT_LINUX_END	 0x30000ULL

/*
 * The multiboot v1 boot path's structures (vmm/multiboot.h), apart from
 * PVH's (it shares only the GDT at LAYOUT_GDT) and Linux's: the image
 * usually loads at 1 MiB or above, and may use all of low memory but these.
 */
#define LAYOUT_MB_START	      0x30000ULL
#define LAYOUT_MB_INFO	      0x30000ULL /* the multiboot information structure (EBX) */
#define LAYOUT_MB_MODS	      0x30100ULL /* the module list: module 0, the initrd */
#define LAYOUT_MB_MMAP	      0x30200ULL /* memory map, LAYOUT_MEMMAP_MAX entries of 24 bytes */
#define LAYOUT_MB_LOADER      0x30800ULL /* boot loader name */
#define LAYOUT_MB_MODSTR      0x31000ULL /* module 0's string: the initrd's path */
#define LAYOUT_MB_MODSTR_MAX  0x1000ULL	 /* including the NUL */
#define LAYOUT_MB_CMDLINE     0x32000ULL /* "KERNEL_PATH CMDLINE" */
#define LAYOUT_MB_CMDLINE_MAX 0xe000ULL	 /* including the NUL */
#define LAYOUT_MB_END	      0x40000ULL

#define LAYOUT_LOWMEM_END   0xa0000ULL	  /* RAM [0, here) */
#define LAYOUT_HIGHMEM	    0x100000ULL	  /* RAM resumes at 1 MiB */
#define LAYOUT_MMIO32_START 0xc0000000ULL /* PCI hole: RAM above moves over 4 GiB */
#define LAYOUT_MMIO32_END   0x100000000ULL
#define LAYOUT_IOAPIC	    0xfec00000ULL
#define LAYOUT_LAPIC	    0xfee00000ULL

#endif
