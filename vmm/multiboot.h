/* SPDX-License-Identifier: MIT */
/*
 * The multiboot v1 loader (multiboot.c), from the Multiboot Specification
 * 0.6.96: what kvm-unit-tests' x86 tests and many small kernels boot with,
 * and what QEMU's -kernel and GRUB load. Main thread, before any vCPU runs.
 * The image is trusted no more than the guest: its header and every segment
 * are validated before anything is written to guest RAM, and on error
 * multiboot_load returns -errno with a one-line message in @err naming the
 * field that is wrong.
 */
#ifndef KVMINI_MULTIBOOT_H
#define KVMINI_MULTIBOOT_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/memory.h"
#include "vmm/util.h"

/* The OS image header: 4-byte aligned, inside the file's first 8192 bytes. */
#define MB_HEADER_MAGIC	     0x1badb002u
#define MB_SEARCH	     8192
#define MB_HDR_FLAGS	     4	/* u32 */
#define MB_HDR_CHECKSUM	     8	/* u32: magic + flags + checksum == 0 */
#define MB_HDR_HEADER_ADDR   12 /* u32 address fields, if flags bit 16 */
#define MB_HDR_LOAD_ADDR     16
#define MB_HDR_LOAD_END_ADDR 20
#define MB_HDR_BSS_END_ADDR  24
#define MB_HDR_ENTRY_ADDR    28
#define MB_HDR_MIN_SIZE	     12
#define MB_HDR_ADDR_SIZE     32 /* with the address fields */

/* Header flags. Bits 0-15 are requirements: one the loader cannot meet
 * must make it refuse the image; bits 16-31 are optional. */
#define MB_HDR_F_PAGE_ALIGN  (1u << 0)	/* modules page-aligned: kvmini always does */
#define MB_HDR_F_MEMORY_INFO (1u << 1)	/* mem_* (and mmap_*) fields: always given */
#define MB_HDR_F_VIDEO_MODE  (1u << 2)	/* video mode table: kvmini has no display */
#define MB_HDR_F_ADDRESS     (1u << 16) /* load by the address fields (a.out kludge) */
#define MB_HDR_F_REQUIRED    0xffffu

/* What the kernel finds in EAX. */
#define MB_BOOT_MAGIC 0x2badb002u

/* The multiboot information structure (EBX): u32 fields at these offsets. */
#define MB_INFO_FLAGS	    0
#define MB_INFO_MEM_LOWER   4  /* KiB from 0 */
#define MB_INFO_MEM_UPPER   8  /* KiB from 1 MiB, contiguous */
#define MB_INFO_CMDLINE	    16 /* GPA of a NUL-terminated string */
#define MB_INFO_MODS_COUNT  20
#define MB_INFO_MODS_ADDR   24
#define MB_INFO_MMAP_LENGTH 44 /* bytes */
#define MB_INFO_MMAP_ADDR   48
#define MB_INFO_LOADER_NAME 64
#define MB_INFO_SIZE	    116 /* through the framebuffer fields, which stay zero */

#define MB_INFO_F_MEMORY      (1u << 0)
#define MB_INFO_F_CMDLINE     (1u << 2)
#define MB_INFO_F_MODS	      (1u << 3)
#define MB_INFO_F_MMAP	      (1u << 6)
#define MB_INFO_F_LOADER_NAME (1u << 9)

/* A module: u32 mod_start, mod_end (exclusive), string, reserved. */
#define MB_MOD_START  0
#define MB_MOD_END    4
#define MB_MOD_STRING 8
#define MB_MOD_SIZE   16

/* A memory map entry: u32 size (of the rest: 20), u64 base_addr, u64
 * length, u32 type (1 RAM, 2 reserved); the next one starts size + 4 on. */
#define MB_MMAP_SIZE	   0
#define MB_MMAP_BASE	   4
#define MB_MMAP_LENGTH	   12
#define MB_MMAP_TYPE	   20
#define MB_MMAP_ENTRY	   24
#define MB_MMAP_SIZE_FIELD 20

#define MB_MEM_LOWER_KIB 640
#define MB_LOADER_NAME	 "kvmini"

/* How multiboot_probe judges a file. */
enum mb_probe {
	MB_PROBE_NONE,	       /* no header magic in the first 8192 bytes */
	MB_PROBE_BAD_CHECKSUM, /* magic, but no header whose checksum adds up */
	MB_PROBE_OK,	       /* a header with a good checksum */
};

/*
 * Look for a multiboot header in @image[0..len): the magic at a 4-byte
 * aligned offset, with the checksum, inside the first 8192 bytes. Only
 * that: multiboot_load validates the rest. Any thread.
 */
enum mb_probe multiboot_probe(const void *image, size_t len);

/* What the guest gets besides the kernel. */
struct multiboot_args {
	const char *kernel_path; /* the command line's first word (argv[0]) */
	const char *cmdline;	 /* the rest; NULL means empty */
	const char *initrd_path; /* module 0's string; NULL means empty */
	const void *initrd;	 /* module 0: initrd_len bytes, or NULL with 0 */
	size_t initrd_len;
};

/* Where things went, for the vCPU setup and for tests. */
struct multiboot_boot {
	uint32_t entry;		/* EIP */
	uint32_t info;		/* EBX: LAYOUT_MB_INFO */
	uint64_t load_low;	/* the image: [load_low, load_high) */
	uint64_t load_high;	/* exclusive, bss included */
	uint64_t initrd_addr;	/* module 0, 0 if none */
	uint32_t header_offset; /* the header's offset in the file */
	uint32_t header_flags;	/* its flags */
};

/*
 * Load the multiboot v1 image @image[0..len) into @m and build the
 * multiboot information structure. The header is the first one in the
 * first 8192 bytes whose checksum adds up. Refused with -ENOEXEC naming the
 * field: no such header (a magic with a bad checksum is named); a header
 * cut short by the end of the file or of the 8192 bytes; required flag
 * bits (0-15) other than 0 (page-aligned modules) and 1 (memory
 * information), which kvmini always honours: bit 2 (a video mode) because
 * kvmini has no display, bits 3-15 because the specification defines none.
 *
 * With flag bit 16 the address fields place the image (the "a.out kludge",
 * whatever the file format): load_addr <= header_addr, the file from offset
 * (header offset - (header_addr - load_addr)) is loaded at load_addr up to
 * load_end_addr (0: to the end of the file; the file must hold it), then
 * zeroed up to bss_end_addr (0: no bss; else >= the loaded end);
 * entry_addr must lie in the image. Without bit 16 the file must be an ELF
 * (ELF32 or ELF64, what elf_parse in vmm/elf.h accepts): its PT_LOAD
 * segments go to their p_paddr (elf_plan_loads' checks), entry e_entry,
 * moved by p_paddr - p_vaddr when it lies in an executable segment's
 * p_vaddr range (as QEMU does), must lie in a segment's file data. Either
 * way the image must be in RAM below 4 GiB and not overlap
 * [LAYOUT_BOOT_START, LAYOUT_BOOT_END) (the GDT), [LAYOUT_MB_START,
 * LAYOUT_MB_END) or the legacy area [LAYOUT_LOWMEM_END, LAYOUT_HIGHMEM)
 * (ACPI tables); all arithmetic is 64-bit on 32-bit fields.
 *
 * Written, everything else validated first: the image; the PVH GDT
 * (pvh_gdt, vmm/pvh.h) at LAYOUT_GDT, which the 32-bit entry state uses;
 * [LAYOUT_MB_START, LAYOUT_MB_END) zeroed, then the information structure
 * at LAYOUT_MB_INFO with flags MEMORY | CMDLINE | MODS | MMAP | LOADER_NAME,
 * mem_lower 640, mem_upper = KiB of RAM from 1 MiB to the end of low RAM,
 * cmdline "KERNEL_PATH CMDLINE" (as QEMU and GRUB pass it; at most
 * LAYOUT_MB_CMDLINE_MAX - 1 bytes, else -E2BIG) at LAYOUT_MB_CMDLINE,
 * mods_count 1 with the initrd (else 0), module 0's string (the initrd
 * path, at most LAYOUT_MB_MODSTR_MAX - 1 bytes, else -E2BIG), the memory map
 * = e820_build() (vmm/e820.h) at LAYOUT_MB_MMAP, boot loader name "kvmini";
 * the initrd at the first page boundary at or above both the image's end
 * and 1 MiB, which must leave room for it below the end of low RAM, else
 * -E2BIG. -EINVAL if guest RAM is too small for these structures or
 * @a->initrd is NULL with a length. Fills *@b on success.
 */
int multiboot_load(struct guest_mem *m, const void *image, size_t len,
		   const struct multiboot_args *a, struct multiboot_boot *b, struct errbuf *err);

#endif
