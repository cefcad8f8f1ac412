/* SPDX-License-Identifier: MIT */
/*
 * PVH boot: load an ELF kernel by physical address and build hvm_start_info.
 * See vmm/pvh.h for what is accepted and what the guest gets.
 *
 * The image is untrusted: every header is copied out with memcpy (offsets may
 * be unaligned) after an overflow-safe range check, and nothing is written
 * to guest RAM until the whole image has been validated.
 */
#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/e820.h"
#include "vmm/elf.h"
#include "vmm/layout.h"
#include "vmm/pvh.h"

/* Flat descriptors; see loader.h for the selector table. */
const uint64_t pvh_gdt[PVH_GDT_ENTRIES] = {
    /* base 0, limit 0xfffff 4 KiB pages (G), 32-bit (D), P, DPL 0, S, type 0xb */
    [PVH_GDT_CS / 8] = 0x00cf9b000000ffffULL,
    /* the same with type 0x3 (read/write data, accessed) */
    [PVH_GDT_DS / 8] = 0x00cf93000000ffffULL,
    /* base 0, limit 0x67 bytes, P, DPL 0, system type 0xb (busy 32-bit TSS) */
    [PVH_GDT_TR / 8] = 0x00008b0000000067ULL,
};

struct note_state {
	bool found;
	uint64_t entry;
	const char *where; /* "PT_NOTE segment" / "SHT_NOTE section", for messages */
	unsigned index;
};

static bool all_zero(const uint8_t *p, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/*
 * Parse the notes in @p[0..size) (a note segment or section, already range
 * checked) with @align-byte padding, recording a PVH entry note in *@st.
 */
static int parse_notes(const uint8_t *p, uint64_t size, uint64_t align, struct note_state *st,
		       struct errbuf *err)
{
	uint64_t off = 0;

	while (off < size) {
		uint64_t rest = size - off, namesz, descsz, name_pad, desc_off, desc_pad;
		uint32_t type;

		if (rest < 12) {
			/* Zero padding after the last note is fine, a cut header is not. */
			if (all_zero(p + off, rest))
				return 0;
			return err_set(err, ENOEXEC,
				       "ELF %s %u: note header at offset %#" PRIx64 " is truncated",
				       st->where, st->index, off);
		}
		namesz = get_le32(p + off);
		descsz = get_le32(p + off + 4);
		type = get_le32(p + off + 8);
		/* 32-bit sizes padded in 64-bit arithmetic cannot wrap. */
		name_pad = ALIGN_UP(namesz, align);
		desc_pad = ALIGN_UP(descsz, align);
		if (name_pad > rest - 12)
			return err_set(err, ENOEXEC,
				       "ELF %s %u: note name (%" PRIu64
				       " bytes) at offset %#" PRIx64 " runs past its end",
				       st->where, st->index, namesz, off);
		desc_off = off + 12 + name_pad;
		if (descsz > size - desc_off)
			return err_set(err, ENOEXEC,
				       "ELF %s %u: note descriptor (%" PRIu64
				       " bytes) at offset %#" PRIx64 " runs past its end",
				       st->where, st->index, descsz, off);

		if (namesz == 4 && !memcmp(p + off + 12, "Xen", 4) &&
		    type == XEN_ELFNOTE_PHYS32_ENTRY) {
			uint64_t entry;

			if (descsz == 4)
				entry = get_le32(p + desc_off);
			else if (descsz == 8)
				entry = get_le64(p + desc_off);
			else
				return err_set(err, ENOEXEC,
					       "ELF PVH note has a %" PRIu64
					       "-byte descriptor (expected 4 or 8)",
					       descsz);
			if (entry > UINT32_MAX)
				return err_set(err, ENOEXEC,
					       "ELF PVH entry %#" PRIx64 " is not below 4 GiB",
					       entry);
			if (st->found && st->entry != entry)
				return err_set(err, ENOEXEC,
					       "ELF has conflicting PVH notes (%#" PRIx64
					       " and %#" PRIx64 ")",
					       st->entry, entry);
			st->found = true;
			st->entry = entry;
		}
		/* The last note's descriptor padding may be missing. */
		off = desc_pad > size - desc_off ? size : desc_off + desc_pad;
	}
	return 0;
}

static uint64_t note_align(uint64_t a)
{
	return a == 8 ? 8 : 4;
}

/* The PVH note from SHT_NOTE sections, for images whose PT_NOTEs lack it. */
static int notes_from_sections(const uint8_t *p, size_t len, const struct elf_info *e,
			       struct note_state *st, struct errbuf *err)
{
	size_t want = e->is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);

	if (e->shnum == 0 || e->shoff == 0)
		return 0;
	int r = elf_check_table("section", "sh", e->shoff, e->shnum, e->shentsize, want, len, err);

	if (r)
		return r;
	st->where = "SHT_NOTE section";
	for (unsigned i = 0; i < e->shnum; i++) {
		const uint8_t *h = p + e->shoff + (uint64_t)i * want;
		uint64_t off, size, align;
		uint32_t type;

		if (e->is64) {
			Elf64_Shdr s;

			memcpy(&s, h, sizeof(s));
			type = s.sh_type, off = s.sh_offset, size = s.sh_size;
			align = s.sh_addralign;
		} else {
			Elf32_Shdr s;

			memcpy(&s, h, sizeof(s));
			type = s.sh_type, off = s.sh_offset, size = s.sh_size;
			align = s.sh_addralign;
		}
		if (type != SHT_NOTE)
			continue;
		if (!elf_in_file(off, size, len))
			return err_set(err, ENOEXEC,
				       "ELF SHT_NOTE section %u (offset %#" PRIx64 ", %" PRIu64
				       " bytes) runs past the end of the file",
				       i, off, size);
		st->index = i;
		r = parse_notes(p + off, size, note_align(align), st, err);
		if (r)
			return r;
	}
	return 0;
}

/* The PVH note from the PT_NOTE segments; *nnote counts them. */
static int notes_from_segments(const uint8_t *p, size_t len, const struct elf_info *e,
			       struct note_state *st, unsigned *nnote, struct errbuf *err)
{
	for (unsigned i = 0; i < e->phnum; i++) {
		struct elf_seg s;
		int r;

		elf_read_phdr(p, e, i, &s);
		if (s.type != PT_NOTE)
			continue;
		if (!elf_in_file(s.offset, s.filesz, len))
			return err_set(err, ENOEXEC,
				       "ELF PT_NOTE segment %u (offset %#" PRIx64 ", %" PRIu64
				       " bytes) runs past the end of the file",
				       i, s.offset, s.filesz);
		st->index = i;
		(*nnote)++;
		r = parse_notes(p + s.offset, s.filesz, note_align(s.align), st, err);
		if (r)
			return r;
	}
	return 0;
}

bool pvh_probe(const void *image, size_t len)
{
	struct elf_info e = {0};
	struct note_state notes = {.where = "PT_NOTE segment"};
	struct errbuf err = {0};
	unsigned nnote = 0;

	if (!image || elf_parse(image, len, &e, &err) ||
	    notes_from_segments(image, len, &e, &notes, &nnote, &err))
		return false;
	if (!notes.found && notes_from_sections(image, len, &e, &notes, &err))
		return false;
	return notes.found;
}

int pvh_load_elf(struct guest_mem *m, const void *image, size_t len, struct pvh_image *img,
		 struct errbuf *err)
{
	static const struct elf_avoid boot = {LAYOUT_BOOT_START, LAYOUT_BOOT_END,
					      "kvmini's boot structures"};
	const uint8_t *p = image;
	struct elf_info e = {0};
	struct note_state notes = {.where = "PT_NOTE segment"};
	struct elf_plan pl = {0};
	unsigned nnote = 0;
	bool entry_ok = false;
	int r;

	if (!p)
		len = 0;
	r = elf_parse(p, len, &e, err);
	if (r)
		return r;
	r = elf_plan_loads(m, p, len, &e, &boot, 1, &pl, err);
	if (r)
		goto out;
	r = notes_from_segments(p, len, &e, &notes, &nnote, err);
	if (r)
		goto out;
	if (!notes.found) {
		r = notes_from_sections(p, len, &e, &notes, err);
		if (r)
			goto out;
	}
	if (!notes.found) {
		r = err_set(err, ENOEXEC,
			    "ELF has no PVH entry note (Xen XEN_ELFNOTE_PHYS32_ENTRY) in its %u "
			    "PT_NOTE segment(s) or SHT_NOTE sections: not a PVH kernel",
			    nnote);
		goto out;
	}
	for (unsigned i = 0; i < pl.n; i++)
		if (notes.entry >= pl.ranges[i].start && notes.entry < pl.ranges[i].file_end)
			entry_ok = true;
	if (!entry_ok) {
		r = err_set(err, ENOEXEC,
			    "ELF PVH entry %#" PRIx64
			    " is not inside the file data of any loaded segment",
			    notes.entry);
		goto out;
	}

	/* Everything was checked above: copy. */
	elf_copy_loads(m, p, &e);
	img->entry = (uint32_t)notes.entry;
	img->load_low = pl.low;
	img->load_high = pl.high;
	r = 0;
out:
	elf_plan_free(&pl);
	return r;
}

_Static_assert(E820_MAX_ENTRIES <= LAYOUT_MEMMAP_MAX, "memory map too long");
_Static_assert(E820_TYPE_RAM == XEN_HVM_MEMMAP_TYPE_RAM &&
		   E820_TYPE_RESERVED == XEN_HVM_MEMMAP_TYPE_RESERVED,
	       "PVH memmap types are e820 types");
_Static_assert(LAYOUT_START_INFO + sizeof(struct hvm_start_info) <= LAYOUT_MODLIST &&
		   LAYOUT_GDT + sizeof(pvh_gdt) <= LAYOUT_START_INFO &&
		   LAYOUT_MODLIST + sizeof(struct hvm_modlist_entry) <= LAYOUT_MEMMAP &&
		   LAYOUT_MEMMAP + LAYOUT_MEMMAP_MAX * sizeof(struct hvm_memmap_table_entry) <=
		       LAYOUT_CMDLINE &&
		   LAYOUT_CMDLINE + LAYOUT_CMDLINE_MAX <= LAYOUT_BOOT_END,
	       "boot structures overlap");

int pvh_setup_start_info(struct guest_mem *m, const char *cmdline, const void *initrd,
			 size_t initrd_len, uint64_t kernel_end, uint64_t rsdp,
			 uint64_t *start_info, struct errbuf *err)
{
	struct hvm_memmap_table_entry map[E820_MAX_ENTRIES];
	struct e820_entry e820[E820_MAX_ENTRIES];
	struct hvm_start_info si = {
	    .magic = XEN_HVM_START_MAGIC_VALUE,
	    .version = 1,
	    .cmdline_paddr = LAYOUT_CMDLINE,
	    .rsdp_paddr = rsdp,
	    .memmap_paddr = LAYOUT_MEMMAP,
	};
	uint8_t *boot;
	size_t cmdlen;
	uint64_t initrd_gpa = 0;

	if (!cmdline)
		cmdline = "";
	cmdlen = strnlen(cmdline, LAYOUT_CMDLINE_MAX);
	if (cmdlen >= LAYOUT_CMDLINE_MAX)
		return err_set(err, E2BIG, "command line is longer than %llu bytes",
			       LAYOUT_CMDLINE_MAX - 1);
	boot = guest_mem_ptr(m, LAYOUT_BOOT_START, LAYOUT_BOOT_END - LAYOUT_BOOT_START);
	if (!boot || m->regions[0].size <= LAYOUT_HIGHMEM)
		return err_set(err, EINVAL, "guest RAM too small for the PVH boot structures");

	if (initrd_len) {
		uint64_t top = m->regions[0].size; /* low RAM ends below the PCI hole */
		uint64_t floor = kernel_end > LAYOUT_HIGHMEM ? kernel_end : LAYOUT_HIGHMEM;

		if (!initrd)
			return err_set(err, EINVAL, "initrd of %zu bytes has no data", initrd_len);
		if (floor > top || initrd_len > top - floor ||
		    ((top - initrd_len) & ~0xfffULL) < floor)
			return err_set(err, E2BIG,
				       "initrd of %zu bytes does not fit in RAM between the kernel "
				       "end %#" PRIx64 " and %#" PRIx64 " (%" PRIu64
				       " bytes free): use more --memory or a smaller initrd",
				       initrd_len, floor, top, floor < top ? top - floor : 0);
		initrd_gpa = (top - initrd_len) & ~0xfffULL;
		si.nr_modules = 1;
		si.modlist_paddr = LAYOUT_MODLIST;
	}

	si.memmap_entries = e820_build(m, e820);
	for (unsigned i = 0; i < si.memmap_entries; i++)
		map[i] = (struct hvm_memmap_table_entry){
		    .addr = e820[i].addr, .size = e820[i].size, .type = e820[i].type};
	memset(boot, 0, LAYOUT_BOOT_END - LAYOUT_BOOT_START);
	memcpy(boot + (LAYOUT_GDT - LAYOUT_BOOT_START), pvh_gdt, sizeof(pvh_gdt));
	memcpy(boot + (LAYOUT_START_INFO - LAYOUT_BOOT_START), &si, sizeof(si));
	memcpy(boot + (LAYOUT_MEMMAP - LAYOUT_BOOT_START), map, si.memmap_entries * sizeof(map[0]));
	memcpy(boot + (LAYOUT_CMDLINE - LAYOUT_BOOT_START), cmdline, cmdlen + 1);
	if (initrd_len) {
		struct hvm_modlist_entry mod = {.paddr = initrd_gpa, .size = initrd_len};
		int r;

		memcpy(boot + (LAYOUT_MODLIST - LAYOUT_BOOT_START), &mod, sizeof(mod));
		r = guest_mem_write(m, initrd_gpa, initrd, initrd_len);
		if (r)
			return err_set(err, -r, "initrd at %#" PRIx64 " is not in RAM", initrd_gpa);
	}
	*start_info = LAYOUT_START_INFO;
	return 0;
}
