/* SPDX-License-Identifier: MIT */
/*
 * What the loader told us, via the PVH struct hvm_start_info (%ebx at entry).
 *
 * At entry, before anything else writes memory outside the image, the
 * runtime copies the command line, memory map and module 0 (the initrd)
 * into its own .bss, so afterwards the loader's structures (under kvmini at
 * [0x1000, 0x3000), under QEMU elsewhere) may be overwritten. All accessors
 * below read those copies: any CPU, any CPL, after boot.
 */
#ifndef GUEST_BOOT_H
#define GUEST_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gerrno.h"

#define HVM_START_MAGIC 0x336ec578u

/* The PVH ABI structures (Xen public/arch-x86/hvm/start_info.h). */
struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;	 /* version >= 1 */
	uint32_t memmap_entries; /* version >= 1 */
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* E820 types: */
	uint32_t reserved;
};

#define MEMMAP_RAM	1
#define MEMMAP_RESERVED 2
#define MEMMAP_ACPI	3
#define MEMMAP_NVS	4
#define MEMMAP_UNUSABLE 5

#define BOOT_CMDLINE_MAX 4096 /* longer command lines are cut (and reported) */
#define BOOT_MEMMAP_MAX	 64   /* further entries are dropped (and reported) */

/*
 * Copy what we need from the hvm_start_info at physical @pa. Boot code
 * only (BSP, CPL0, first thing in C). Returns 0, or -EINVAL if there is no
 * valid structure there (the caller reports it once the console is up).
 */
int boot_info_copy(uint32_t pa);

/* Print any truncation noticed by boot_info_copy. Boot code, after console_init. */
void boot_info_warn(void);

/* The command line ("" if none). NUL-terminated, never NULL. */
const char *boot_cmdline(void);

/* Memory map: entries in loader order. */
unsigned int boot_memmap_count(void);
const struct hvm_memmap_table_entry *boot_memmap_entry(unsigned int i);

/* Sum of the sizes of all MEMMAP_RAM entries. */
uint64_t boot_ram_bytes(void);

/* Module 0 (the initrd): 0 and its range, or -ENOENT if there is none. */
int boot_initrd(uint64_t *paddr, uint64_t *size);

/* start_info's rsdp_paddr: the ACPI RSDP, or 0 if the loader gave none
 * (kvmini: none; QEMU microvm: its firmware's tables). */
uint64_t boot_rsdp(void);

/* Physical [start, end) of the loaded image, .bss included. */
uint64_t boot_image_start(void);
uint64_t boot_image_end(void);

/*
 * Command line as space-separated words; "key=value" words have a value.
 *
 * cmdline_get: find the last word "key=..." and return its value in *val
 * (not NUL-terminated) and *len. 0, or -ENOENT.
 * cmdline_get_u64: the value parsed as decimal or 0x-hex. 0, -ENOENT, or
 * -EINVAL if it is not entirely a number or overflows 64 bits.
 * cmdline_has: true if the word "key" or "key=..." is present.
 * cmdline_listed: true if @name is one of the comma-separated items of
 * "key=a,b,..."; @dflt if there is no such word.
 */
int cmdline_get(const char *key, const char **val, size_t *len);
int cmdline_get_u64(const char *key, uint64_t *v);
bool cmdline_has(const char *key);
bool cmdline_listed(const char *key, const char *name, bool dflt);
/* "key=a,b,c" (numbers in 1..@max; others skipped) into @out, at most @cap
 * of them; *@n is set to how many unless none was found (the caller's
 * defaults stay). */
void cmdline_u32_list(const char *key, uint32_t *out, unsigned int *n, unsigned int cap,
		      uint32_t max);

/* Parse [s, s + len) as decimal or 0x-hex. 0 or -EINVAL (also on overflow). */
int parse_u64(const char *s, size_t len, uint64_t *v);

/*
 * Bump allocator over free RAM below 4 GiB: starts after the image, skips
 * the initrd, never frees. Memory is not zeroed. Returns NULL (and allocates
 * nothing) if no RAM entry has room. @align: a power of two.
 * Any CPU, any CPL, but not thread-safe: allocate from one CPU at a time.
 */
void *mem_alloc(size_t size, size_t align);

#endif
