/* SPDX-License-Identifier: MIT */
/*
 * The PVH ELF boot loader (pvh.c). Main thread, before any vCPU runs. It
 * validates its whole input (a kernel or initrd file is trusted no more
 * than the guest) and on error returns -errno with a one-line message in
 * @err; nothing outside guest RAM is ever written.
 */
#ifndef KVMINI_PVH_H
#define KVMINI_PVH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/memory.h"
#include "vmm/util.h"

/*
 * The Xen PVH boot ABI (xen/include/public/arch-x86/hvm/start_info.h and
 * docs/misc/pvh.pandoc in Xen), written from the published layout.
 */
#define XEN_ELFNOTE_PHYS32_ENTRY     18
#define XEN_HVM_START_MAGIC_VALUE    0x336ec578u
#define XEN_HVM_MEMMAP_TYPE_RAM	     1
#define XEN_HVM_MEMMAP_TYPE_RESERVED 2

struct hvm_start_info {
	uint32_t magic;		/* XEN_HVM_START_MAGIC_VALUE */
	uint32_t version;	/* 1: the memmap fields are valid */
	uint32_t flags;		/* SIF_*: kvmini sets none */
	uint32_t nr_modules;	/* entries at modlist_paddr */
	uint64_t modlist_paddr; /* struct hvm_modlist_entry[nr_modules] */
	uint64_t cmdline_paddr; /* NUL-terminated */
	uint64_t rsdp_paddr;	/* ACPI RSDP, 0: none */
	uint64_t memmap_paddr;	/* struct hvm_memmap_table_entry[memmap_entries] */
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr; /* 0: none */
	uint64_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* XEN_HVM_MEMMAP_TYPE_* (e820 types) */
	uint32_t reserved;
};

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info layout");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry layout");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap_table_entry layout");

/*
 * The GDT pvh_setup_start_info() writes at LAYOUT_GDT. The vCPU setup must
 * load GDTR = {LAYOUT_GDT, PVH_GDT_LIMIT} and segment registers matching
 * these descriptors (the PVH ABI requires the flat 32-bit state; the GDT
 * makes it consistent, so a guest may reload selectors before its own GDT):
 *   0x00  null
 *   0x08  CS: base 0, limit 4 GiB (G=1), 32-bit (D=1), type 0xb execute/read accessed, DPL 0
 *   0x10  DS/ES/SS (FS/GS): base 0, limit 4 GiB, 32-bit, type 0x3 read/write accessed, DPL 0
 *   0x18  TR: base 0, limit 0x67, type 0xb busy 32-bit TSS (what the ABI asks of TR)
 * Then: CR0 = PE only (ET may be set), CR4 = 0, EFER = 0, EFLAGS bit 1 only,
 * EIP = pvh_image.entry, EBX = the start_info GPA.
 */
#define PVH_GDT_CS	0x08
#define PVH_GDT_DS	0x10
#define PVH_GDT_TR	0x18
#define PVH_GDT_ENTRIES 4
#define PVH_GDT_LIMIT	(PVH_GDT_ENTRIES * 8 - 1)
extern const uint64_t pvh_gdt[PVH_GDT_ENTRIES];

/*
 * Is @image[0..len) an ELF whose PT_NOTE segments (or, if they have none,
 * SHT_NOTE sections) hold a PVH entry note? Only that: pvh_load_elf
 * validates the rest. Used to pick the loader (vm_load_kernel). Any thread.
 */
bool pvh_probe(const void *image, size_t len);

/*
 * Load an ELF (ELFCLASS64 or ELFCLASS32, x86) carrying a Xen PVH note
 * (XEN_ELFNOTE_PHYS32_ENTRY) from @image[0..len): copy its PT_LOAD segments
 * (zero-filling memsz beyond filesz) to their physical addresses (p_paddr)
 * and return the 32-bit PVH entry point and the loaded range in *img.
 *
 * Accepted: what elf_parse (vmm/elf.h) accepts. PT_LOAD segments are
 * checked by elf_plan_loads: in one RAM region (not across the PCI hole), not
 * overlapping each other or [LAYOUT_BOOT_START, LAYOUT_BOOT_END). Other
 * segment types are ignored.
 *
 * The PVH note is searched in every PT_NOTE segment; only if there is none
 * there, in SHT_NOTE sections (then the section header table is validated
 * too). Every note in those is parsed with bounds checks (4-byte padding, or
 * 8 where the segment/section alignment is 8); a note header cut short is
 * an error, zero bytes after the last note are not. The "Xen" note of type
 * 18 must have a 4- or 8-byte descriptor holding an address below 4 GiB;
 * several such notes must agree. The entry must lie in the file-backed part
 * [p_paddr, p_paddr + p_filesz) of a loaded segment. e_entry is ignored.
 *
 * Everything is validated before anything is written to guest RAM.
 * Errors: -ENOEXEC (not a loadable PVH ELF: every check above), -ENOMEM.
 */
struct pvh_image {
	uint32_t entry;	    /* XEN_ELFNOTE_PHYS32_ENTRY */
	uint64_t load_low;  /* lowest GPA written */
	uint64_t load_high; /* highest GPA written, exclusive */
};
int pvh_load_elf(struct guest_mem *m, const void *image, size_t len, struct pvh_image *img,
		 struct errbuf *err);

/*
 * Write the boot structures into [LAYOUT_BOOT_START, LAYOUT_BOOT_END) (first
 * zeroed): the GDT above, hvm_start_info (version 1, flags 0, rsdp_paddr @rsdp:
 * the ACPI RSDP's GPA, 0 for none)
 * at LAYOUT_START_INFO, the memory map at LAYOUT_MEMMAP, the command line at
 * LAYOUT_CMDLINE (NULL means empty), and, if @initrd_len > 0, the initrd as
 * module 0 (modlist at LAYOUT_MODLIST, no module command line). Returns the
 * start_info GPA in *start_info.
 *
 * The memory map is e820_build()'s (vmm/e820.h).
 *
 * The initrd goes at the highest page-aligned address where it ends at or
 * below the end of low RAM; it must start at or above max(@kernel_end,
 * LAYOUT_HIGHMEM) (@kernel_end is pvh_image.load_high), else -E2BIG with
 * "initrd of N bytes does not fit ...". A command line longer than
 * LAYOUT_CMDLINE_MAX - 1 is -E2BIG. -EINVAL for a NULL @initrd with a length.
 */
int pvh_setup_start_info(struct guest_mem *m, const char *cmdline, const void *initrd,
			 size_t initrd_len, uint64_t kernel_end, uint64_t rsdp,
			 uint64_t *start_info, struct errbuf *err);

#endif
