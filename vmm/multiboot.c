// SPDX-License-Identifier: MIT
/*
 * Multiboot v1: find and check the header, place the image (address fields
 * or ELF), build the information structure, command line, module 0 and
 * memory map. See vmm/multiboot.h for what is accepted and what the guest
 * gets. Fields are read with memcpy (the file is a byte array); nothing is
 * written to guest RAM before every check passed.
 */
#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "vmm/e820.h"
#include "vmm/elf.h"
#include "vmm/layout.h"
#include "vmm/multiboot.h"
#include "vmm/pvh.h"

_Static_assert(LAYOUT_BOOT_END <= LAYOUT_MB_START && LAYOUT_LINUX_END <= LAYOUT_MB_START &&
		   LAYOUT_MB_INFO + MB_INFO_SIZE <= LAYOUT_MB_MODS &&
		   LAYOUT_MB_MODS + MB_MOD_SIZE <= LAYOUT_MB_MMAP &&
		   LAYOUT_MB_MMAP + LAYOUT_MEMMAP_MAX * MB_MMAP_ENTRY <= LAYOUT_MB_LOADER &&
		   LAYOUT_MB_LOADER + sizeof(MB_LOADER_NAME) <= LAYOUT_MB_MODSTR &&
		   LAYOUT_MB_MODSTR + LAYOUT_MB_MODSTR_MAX <= LAYOUT_MB_CMDLINE &&
		   LAYOUT_MB_CMDLINE + LAYOUT_MB_CMDLINE_MAX <= LAYOUT_MB_END &&
		   LAYOUT_MB_END <= LAYOUT_LOWMEM_END,
	       "multiboot structures overlap");
_Static_assert(E820_MAX_ENTRIES <= LAYOUT_MEMMAP_MAX, "memory map too long");
_Static_assert(MB_HDR_ADDR_SIZE <= MB_SEARCH, "header search");

#define PAGE 4096ULL

static void put32(uint8_t *p, size_t off, uint32_t v)
{
	memcpy(p + off, &v, sizeof(v));
}

static void put64(uint8_t *p, size_t off, uint64_t v)
{
	memcpy(p + off, &v, sizeof(v));
}

/* The first header offset with a good checksum, or -1; *bad_at: the first
 * magic with a bad one (or -1). */
static long find_header(const uint8_t *p, size_t len, long *bad_at)
{
	size_t lim = len < MB_SEARCH ? len : MB_SEARCH;

	*bad_at = -1;
	for (size_t off = 0; off + MB_HDR_MIN_SIZE <= lim; off += 4) {
		uint32_t flags, sum;

		if (get_le32(p + off) != MB_HEADER_MAGIC)
			continue;
		flags = get_le32(p + off + MB_HDR_FLAGS);
		sum = MB_HEADER_MAGIC + flags + get_le32(p + off + MB_HDR_CHECKSUM);
		if (sum == 0)
			return (long)off;
		if (*bad_at < 0)
			*bad_at = (long)off;
	}
	return -1;
}

enum mb_probe multiboot_probe(const void *image, size_t len)
{
	long bad_at;

	if (!image)
		return MB_PROBE_NONE;
	if (find_header(image, len, &bad_at) >= 0)
		return MB_PROBE_OK;
	return bad_at >= 0 ? MB_PROBE_BAD_CHECKSUM : MB_PROBE_NONE;
}

/* Where the image goes, validated. */
struct mb_image {
	uint32_t off, flags; /* the header */
	uint64_t low, high;  /* [low, high) in guest memory */
	uint64_t entry;
	/* The address fields' image: file [file_off, + load_size) at low. */
	uint64_t file_off, load_size;
};

static int check_header(const uint8_t *p, size_t len, struct mb_image *im, struct errbuf *err)
{
	long bad_at, off = find_header(p, len, &bad_at);
	uint32_t req;

	if (off < 0 && bad_at >= 0)
		return err_set(err, ENOEXEC,
			       "multiboot header at offset %#lx has a bad checksum %#" PRIx32
			       " (magic + flags + checksum must be 0 mod 2^32)",
			       bad_at, get_le32(p + (size_t)bad_at + MB_HDR_CHECKSUM));
	if (off < 0)
		return err_set(err, ENOEXEC,
			       "no multiboot header (magic %#x) in the first %d bytes",
			       MB_HEADER_MAGIC, MB_SEARCH);
	im->off = (uint32_t)off;
	im->flags = get_le32(p + (size_t)off + MB_HDR_FLAGS);
	req = im->flags & MB_HDR_F_REQUIRED;
	if (req & MB_HDR_F_VIDEO_MODE)
		return err_set(err, ENOEXEC,
			       "multiboot header flags %#" PRIx32
			       " require a video mode (bit 2): kvmini has no display",
			       im->flags);
	req &= ~(MB_HDR_F_PAGE_ALIGN | MB_HDR_F_MEMORY_INFO);
	if (req)
		return err_set(err, ENOEXEC,
			       "multiboot header flags %#" PRIx32 " require bits %#" PRIx32
			       " that multiboot v1 does not define",
			       im->flags, req);
	if ((im->flags & MB_HDR_F_ADDRESS) &&
	    (off + MB_HDR_ADDR_SIZE > MB_SEARCH || (size_t)off + MB_HDR_ADDR_SIZE > len))
		return err_set(err, ENOEXEC,
			       "multiboot header at offset %#lx: its address fields (flags bit 16) "
			       "run past the %s",
			       off,
			       (size_t)off + MB_HDR_ADDR_SIZE > len ? "end of the file"
								    : "first 8192 bytes");
	return 0;
}

/* Flag bit 16: the address fields place the image. */
static int plan_aout(const uint8_t *p, size_t len, struct mb_image *im, struct errbuf *err)
{
	uint32_t header_addr = get_le32(p + im->off + MB_HDR_HEADER_ADDR);
	uint32_t load_addr = get_le32(p + im->off + MB_HDR_LOAD_ADDR);
	uint32_t load_end = get_le32(p + im->off + MB_HDR_LOAD_END_ADDR);
	uint32_t bss_end = get_le32(p + im->off + MB_HDR_BSS_END_ADDR);
	uint32_t entry = get_le32(p + im->off + MB_HDR_ENTRY_ADDR);

	if (load_addr > header_addr)
		return err_set(err, ENOEXEC,
			       "multiboot load_addr %#" PRIx32 " is above header_addr %#" PRIx32,
			       load_addr, header_addr);
	if (header_addr - load_addr > im->off)
		return err_set(err, ENOEXEC,
			       "multiboot header_addr %#" PRIx32 " - load_addr %#" PRIx32
			       " is more than the header's offset %#" PRIx32
			       " in the file: loading would start before the file",
			       header_addr, load_addr, im->off);
	im->file_off = im->off - (header_addr - load_addr);
	if (load_end == 0) {
		im->load_size = len - im->file_off;
	} else {
		if (load_end < load_addr)
			return err_set(err, ENOEXEC,
				       "multiboot load_end_addr %#" PRIx32
				       " is below load_addr %#" PRIx32,
				       load_end, load_addr);
		im->load_size = (uint64_t)load_end - load_addr;
		if (im->load_size > len - im->file_off)
			return err_set(err, ENOEXEC,
				       "multiboot load_end_addr %#" PRIx32 " asks for %#" PRIx64
				       " bytes from file offset %#" PRIx64
				       ", past the end of the file (%zu bytes)",
				       load_end, im->load_size, im->file_off, len);
	}
	im->low = load_addr;
	im->high = load_addr + im->load_size;
	if (bss_end) {
		if (bss_end < im->high)
			return err_set(err, ENOEXEC,
				       "multiboot bss_end_addr %#" PRIx32
				       " is below the loaded end %#" PRIx64,
				       bss_end, im->high);
		im->high = bss_end;
	}
	if (im->high == im->low)
		return err_set(err, ENOEXEC,
			       "multiboot address fields load nothing (load_addr %#" PRIx32
			       " to load_end_addr %#" PRIx32 ")",
			       load_addr, load_end);
	if (entry < im->low || entry >= im->high)
		return err_set(err, ENOEXEC,
			       "multiboot entry_addr %#" PRIx32 " is outside the image [%#" PRIx64
			       "-%#" PRIx64 ")",
			       entry, im->low, im->high);
	im->entry = entry;
	return 0;
}

/* e_entry is virtual: move it to where its executable segment is loaded. */
static uint64_t elf_phys_entry(const uint8_t *p, const struct elf_info *e)
{
	for (unsigned i = 0; i < e->phnum; i++) {
		struct elf_seg s;

		elf_read_phdr(p, e, i, &s);
		if (s.type == PT_LOAD && (s.flags & PF_X) && s.vaddr != s.paddr &&
		    e->entry >= s.vaddr && e->entry - s.vaddr < s.filesz)
			return e->entry - s.vaddr + s.paddr;
	}
	return e->entry;
}

/* No bit 16: an ELF, loaded by its program headers. */
static int plan_elf(const struct guest_mem *m, const uint8_t *p, size_t len,
		    const struct elf_avoid *avoid, unsigned navoid, struct mb_image *im,
		    struct elf_info *e, struct errbuf *err)
{
	struct elf_plan pl = {0};
	bool entry_ok = false;
	int r;

	if (len < SELFMAG || memcmp(p, ELFMAG, SELFMAG))
		return err_set(err, ENOEXEC,
			       "multiboot header flags %#" PRIx32
			       " lack bit 16 (address fields) and the file is not an ELF",
			       im->flags);
	r = elf_parse(p, len, e, err);
	if (r)
		return r;
	r = elf_plan_loads(m, p, len, e, avoid, navoid, &pl, err);
	if (r)
		goto out;
	im->entry = elf_phys_entry(p, e);
	for (unsigned i = 0; i < pl.n; i++)
		if (im->entry >= pl.ranges[i].start && im->entry < pl.ranges[i].file_end)
			entry_ok = true;
	if (!entry_ok) {
		r = err_set(err, ENOEXEC,
			    "ELF entry %#" PRIx64
			    " is not inside the file data of any loaded segment",
			    im->entry);
		goto out;
	}
	if (pl.high > LAYOUT_MMIO32_END) {
		r = err_set(err, ENOEXEC,
			    "ELF segments end at %#" PRIx64
			    ", above 4 GiB: a multiboot kernel starts in 32-bit mode",
			    pl.high);
		goto out;
	}
	im->low = pl.low;
	im->high = pl.high;
out:
	elf_plan_free(&pl);
	return r;
}

/* The address fields' image must be in RAM below the PCI hole and clear of
 * @avoid (elf_plan_loads checks ELF segments one by one). */
static int check_aout_placement(const struct guest_mem *m, const struct mb_image *im,
				const struct elf_avoid *avoid, unsigned navoid, struct errbuf *err)
{
	if (im->high > LAYOUT_MMIO32_END || !guest_mem_ptr(m, im->low, im->high - im->low))
		return err_set(err, ENOEXEC,
			       "multiboot image [%#" PRIx64 "-%#" PRIx64
			       ") is not in RAM below the PCI hole (%" PRIu64 " MiB there)",
			       im->low, im->high, m->regions[0].size >> 20);
	for (unsigned k = 0; k < navoid; k++)
		if (im->low < avoid[k].end && im->high > avoid[k].start)
			return err_set(err, ENOEXEC,
				       "multiboot image [%#" PRIx64 "-%#" PRIx64
				       ") overlaps %s [%#" PRIx64 "-%#" PRIx64 ")",
				       im->low, im->high, avoid[k].what, avoid[k].start,
				       avoid[k].end);
	return 0;
}

static void write_info(struct guest_mem *m, uint8_t *area, const struct multiboot_args *a,
		       uint64_t initrd_gpa)
{
	struct e820_entry e820[E820_MAX_ENTRIES];
	unsigned n = e820_build(m, e820);
	uint8_t *info = area + (LAYOUT_MB_INFO - LAYOUT_MB_START);
	uint8_t *mmap = area + (LAYOUT_MB_MMAP - LAYOUT_MB_START);
	char *cmd = (char *)area + (LAYOUT_MB_CMDLINE - LAYOUT_MB_START);

	put32(info, MB_INFO_FLAGS,
	      MB_INFO_F_MEMORY | MB_INFO_F_CMDLINE | MB_INFO_F_MODS | MB_INFO_F_MMAP |
		  MB_INFO_F_LOADER_NAME);
	put32(info, MB_INFO_MEM_LOWER, MB_MEM_LOWER_KIB);
	put32(info, MB_INFO_MEM_UPPER, (uint32_t)((m->regions[0].size - LAYOUT_HIGHMEM) >> 10));
	/* Lengths were checked by the caller. */
	snprintf(cmd, LAYOUT_MB_CMDLINE_MAX, "%s %s", a->kernel_path ? a->kernel_path : "",
		 a->cmdline ? a->cmdline : "");
	put32(info, MB_INFO_CMDLINE, (uint32_t)LAYOUT_MB_CMDLINE);
	put32(info, MB_INFO_MODS_ADDR, (uint32_t)LAYOUT_MB_MODS);
	if (a->initrd_len) {
		uint8_t *mod = area + (LAYOUT_MB_MODS - LAYOUT_MB_START);
		const char *path = a->initrd_path ? a->initrd_path : "";

		put32(info, MB_INFO_MODS_COUNT, 1);
		put32(mod, MB_MOD_START, (uint32_t)initrd_gpa);
		put32(mod, MB_MOD_END, (uint32_t)(initrd_gpa + a->initrd_len));
		put32(mod, MB_MOD_STRING, (uint32_t)LAYOUT_MB_MODSTR);
		memcpy(area + (LAYOUT_MB_MODSTR - LAYOUT_MB_START), path, strlen(path) + 1);
	}
	for (unsigned i = 0; i < n; i++) {
		uint8_t *ent = mmap + i * MB_MMAP_ENTRY;

		put32(ent, MB_MMAP_SIZE, MB_MMAP_SIZE_FIELD);
		put64(ent, MB_MMAP_BASE, e820[i].addr);
		put64(ent, MB_MMAP_LENGTH, e820[i].size);
		put32(ent, MB_MMAP_TYPE, e820[i].type);
	}
	put32(info, MB_INFO_MMAP_LENGTH, n * MB_MMAP_ENTRY);
	put32(info, MB_INFO_MMAP_ADDR, (uint32_t)LAYOUT_MB_MMAP);
	memcpy(area + (LAYOUT_MB_LOADER - LAYOUT_MB_START), MB_LOADER_NAME, sizeof(MB_LOADER_NAME));
	put32(info, MB_INFO_LOADER_NAME, (uint32_t)LAYOUT_MB_LOADER);
}

/* Command line and module string lengths, and the initrd's place. */
static int check_args(const struct guest_mem *m, const struct multiboot_args *a, uint64_t high,
		      uint64_t *initrd_gpa, struct errbuf *err)
{
	size_t klen = a->kernel_path ? strlen(a->kernel_path) : 0;
	size_t clen = a->cmdline ? strnlen(a->cmdline, LAYOUT_MB_CMDLINE_MAX) : 0;
	uint64_t low_end = m->regions[0].size, floor;

	if (klen + 1 + clen >= LAYOUT_MB_CMDLINE_MAX)
		return err_set(
		    err, E2BIG,
		    "command line with the kernel's path first is longer than %llu bytes",
		    LAYOUT_MB_CMDLINE_MAX - 1);
	if (!a->initrd_len)
		return 0;
	if (!a->initrd)
		return err_set(err, EINVAL, "initrd of %zu bytes has no data", a->initrd_len);
	if (a->initrd_path && strnlen(a->initrd_path, LAYOUT_MB_MODSTR_MAX) >= LAYOUT_MB_MODSTR_MAX)
		return err_set(err, E2BIG, "initrd path is longer than %llu bytes",
			       LAYOUT_MB_MODSTR_MAX - 1);
	floor = ALIGN_UP(high > LAYOUT_HIGHMEM ? high : LAYOUT_HIGHMEM, PAGE);
	if (floor > low_end || a->initrd_len > low_end - floor)
		return err_set(err, E2BIG,
			       "initrd of %zu bytes does not fit in RAM between the image's end "
			       "%#" PRIx64 " and %#" PRIx64
			       ": use more --memory or a smaller initrd",
			       a->initrd_len, floor, low_end);
	*initrd_gpa = floor;
	return 0;
}

int multiboot_load(struct guest_mem *m, const void *image, size_t len,
		   const struct multiboot_args *a, struct multiboot_boot *b, struct errbuf *err)
{
	static const struct elf_avoid avoid[] = {
	    {LAYOUT_BOOT_START, LAYOUT_BOOT_END, "kvmini's GDT area"},
	    {LAYOUT_MB_START, LAYOUT_MB_END, "kvmini's multiboot structures"},
	    {LAYOUT_LOWMEM_END, LAYOUT_HIGHMEM, "the legacy area with the ACPI tables"},
	};
	const uint8_t *p = image;
	struct mb_image im = {0};
	struct elf_info e = {0};
	uint64_t initrd_gpa = 0;
	uint8_t *area, *boot;
	int r;

	if (!p)
		len = 0;
	r = check_header(p, len, &im, err);
	if (r)
		return r;
	area = guest_mem_ptr(m, LAYOUT_MB_START, LAYOUT_MB_END - LAYOUT_MB_START);
	boot = guest_mem_ptr(m, LAYOUT_GDT, sizeof(pvh_gdt));
	if (!area || !boot || m->regions[0].gpa != 0 || m->regions[0].size <= LAYOUT_HIGHMEM)
		return err_set(err, EINVAL, "guest RAM too small for the multiboot structures");
	if (im.flags & MB_HDR_F_ADDRESS) {
		r = plan_aout(p, len, &im, err);
		if (!r)
			r = check_aout_placement(m, &im, avoid, ARRAY_SIZE(avoid), err);
	} else {
		r = plan_elf(m, p, len, avoid, ARRAY_SIZE(avoid), &im, &e, err);
	}
	if (r)
		return r;
	r = check_args(m, a, im.high, &initrd_gpa, err);
	if (r)
		return r;

	/* Everything is checked: write. */
	if (im.flags & MB_HDR_F_ADDRESS) {
		uint8_t *dst = guest_mem_ptr(m, im.low, im.high - im.low);

		memcpy(dst, p + im.file_off, im.load_size);
		memset(dst + im.load_size, 0, im.high - im.low - im.load_size);
	} else {
		elf_copy_loads(m, p, &e);
	}
	memcpy(boot, pvh_gdt, sizeof(pvh_gdt));
	memset(area, 0, LAYOUT_MB_END - LAYOUT_MB_START);
	write_info(m, area, a, initrd_gpa);
	if (a->initrd_len) {
		r = guest_mem_write(m, initrd_gpa, a->initrd, a->initrd_len);
		if (r)
			return err_set(err, -r, "initrd at %#" PRIx64 " is not in RAM", initrd_gpa);
	}
	*b = (struct multiboot_boot){
	    .entry = (uint32_t)im.entry,
	    .info = (uint32_t)LAYOUT_MB_INFO,
	    .load_low = im.low,
	    .load_high = im.high,
	    .initrd_addr = initrd_gpa,
	    .header_offset = im.off,
	    .header_flags = im.flags,
	};
	return 0;
}
