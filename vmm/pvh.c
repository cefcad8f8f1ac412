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

/* The class-independent view of the headers we use. */
struct elf_info {
	bool is64;
	uint64_t phoff, shoff;
	uint16_t phentsize, phnum, shentsize, shnum;
};

struct elf_seg {
	uint32_t type;
	uint64_t offset, paddr, filesz, memsz, align;
};

struct load_range {
	uint64_t start, end; /* [start, end) in guest physical memory */
	uint64_t file_end;   /* start + p_filesz */
	unsigned index;	     /* program header index, for messages */
};

struct note_state {
	bool found;
	uint64_t entry;
	const char *where; /* "PT_NOTE segment" / "SHT_NOTE section", for messages */
	unsigned index;
};

/* [off, off + size) lies inside [0, len), without overflow. */
static bool in_file(uint64_t off, uint64_t size, size_t len)
{
	return off <= len && size <= len - off;
}

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

_Static_assert(offsetof(Elf64_Ehdr, e_type) == offsetof(Elf32_Ehdr, e_type) &&
		   offsetof(Elf64_Ehdr, e_machine) == offsetof(Elf32_Ehdr, e_machine) &&
		   offsetof(Elf64_Ehdr, e_version) == offsetof(Elf32_Ehdr, e_version),
	       "ELF header prefix");

/* The class-specific ELF header fields of @h (an Elf32_Ehdr or Elf64_Ehdr). */
#define COPY_EHDR(e, h)                                                                            \
	do {                                                                                       \
		(e)->phoff = (h).e_phoff;                                                          \
		(e)->shoff = (h).e_shoff;                                                          \
		(e)->phentsize = (h).e_phentsize;                                                  \
		(e)->phnum = (h).e_phnum;                                                          \
		(e)->shentsize = (h).e_shentsize;                                                  \
		(e)->shnum = (h).e_shnum;                                                          \
	} while (0)

/* A header table (@kind "program" or "section", field prefix @pfx) must have
 * entries of exactly @want bytes and lie inside the file. */
static int check_table(const char *kind, const char *pfx, uint64_t off, unsigned num,
		       unsigned entsize, size_t want, size_t len, struct errbuf *err)
{
	if (entsize != want)
		return err_set(err, ENOEXEC, "ELF e_%sentsize %u is not %zu", pfx, entsize, want);
	if (!in_file(off, (uint64_t)num * want, len))
		return err_set(err, ENOEXEC,
			       "ELF %s headers (e_%soff %#" PRIx64
			       ", %u entries) run past the end of the file (%zu bytes)",
			       kind, pfx, off, num, len);
	return 0;
}

static int parse_ehdr(const uint8_t *p, size_t len, struct elf_info *e, struct errbuf *err)
{
	uint16_t type, machine;
	uint32_t version;

	if (len < EI_NIDENT)
		return err_set(err, ENOEXEC, "ELF truncated: %zu bytes is not even an ELF ident",
			       len);
	if (memcmp(p, ELFMAG, SELFMAG))
		return err_set(err, ENOEXEC, "not an ELF file (bad magic)");
	if (p[EI_CLASS] != ELFCLASS64 && p[EI_CLASS] != ELFCLASS32)
		return err_set(err, ENOEXEC, "ELF class %u is neither ELFCLASS32 nor ELFCLASS64",
			       p[EI_CLASS]);
	if (p[EI_DATA] != ELFDATA2LSB)
		return err_set(err, ENOEXEC, "ELF data encoding %u is not little-endian",
			       p[EI_DATA]);
	if (p[EI_VERSION] != EV_CURRENT)
		return err_set(err, ENOEXEC, "ELF ident version %u is not 1", p[EI_VERSION]);
	e->is64 = p[EI_CLASS] == ELFCLASS64;

	size_t need = e->is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);

	if (len < need)
		return err_set(err, ENOEXEC, "ELF truncated: %zu bytes, an ELF%d header needs %zu",
			       len, e->is64 ? 64 : 32, need);
	/* e_type, e_machine and e_version sit at the same offsets in both classes. */
	type = get16(p + offsetof(Elf64_Ehdr, e_type));
	machine = get16(p + offsetof(Elf64_Ehdr, e_machine));
	version = get32(p + offsetof(Elf64_Ehdr, e_version));
	if (e->is64) {
		Elf64_Ehdr h;

		memcpy(&h, p, sizeof(h));
		COPY_EHDR(e, h);
		if (machine != EM_X86_64)
			return err_set(err, ENOEXEC, "ELF64 machine %u is not x86-64 (%u)", machine,
				       EM_X86_64);
	} else {
		Elf32_Ehdr h;

		memcpy(&h, p, sizeof(h));
		COPY_EHDR(e, h);
		if (machine != EM_386 && machine != EM_X86_64)
			return err_set(err, ENOEXEC, "ELF32 machine %u is not i386 or x86-64",
				       machine);
	}
	if (version != EV_CURRENT)
		return err_set(err, ENOEXEC, "ELF version %" PRIu32 " is not 1", version);
	if (type != ET_EXEC)
		return err_set(err, ENOEXEC, "ELF type %u is not ET_EXEC (2)", type);

	size_t want = e->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);

	if (e->phnum == 0)
		return err_set(err, ENOEXEC, "ELF has no program headers");
	if (e->phnum == PN_XNUM)
		return err_set(err, ENOEXEC,
			       "ELF uses extended program header numbering (PN_XNUM)");
	return check_table("program", "ph", e->phoff, e->phnum, e->phentsize, want, len, err);
}

/* Program header @i; the table was range-checked by parse_ehdr. */
static void read_phdr(const uint8_t *p, const struct elf_info *e, unsigned i, struct elf_seg *s)
{
	if (e->is64) {
		Elf64_Phdr h;

		memcpy(&h, p + e->phoff + (uint64_t)i * sizeof(h), sizeof(h));
		*s = (struct elf_seg){h.p_type,	  h.p_offset, h.p_paddr,
				      h.p_filesz, h.p_memsz,  h.p_align};
	} else {
		Elf32_Phdr h;

		memcpy(&h, p + e->phoff + (uint64_t)i * sizeof(h), sizeof(h));
		*s = (struct elf_seg){h.p_type,	  h.p_offset, h.p_paddr,
				      h.p_filesz, h.p_memsz,  h.p_align};
	}
}

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
		namesz = get32(p + off);
		descsz = get32(p + off + 4);
		type = get32(p + off + 8);
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
				entry = get32(p + desc_off);
			else if (descsz == 8)
				entry = get64(p + desc_off);
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
	int r = check_table("section", "sh", e->shoff, e->shnum, e->shentsize, want, len, err);

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
		if (!in_file(off, size, len))
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

/* Why [start, end) is not inside one RAM region, for the error message. */
static const char *range_problem(const struct guest_mem *m, uint64_t start, uint64_t end)
{
	if (start < LAYOUT_MMIO32_END && end > LAYOUT_MMIO32_START)
		return "lies in the PCI hole [0xc0000000-0x100000000)";
	for (int i = 0; i < m->nregions; i++) {
		uint64_t r_end = m->regions[i].gpa + m->regions[i].size;

		if (start < r_end && end > r_end)
			return "runs past the end of RAM";
	}
	return "is outside guest RAM";
}

static int cmp_range(const void *a, const void *b)
{
	const struct load_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

int pvh_load_elf(struct guest_mem *m, const void *image, size_t len, struct pvh_image *img,
		 struct errbuf *err)
{
	const uint8_t *p = image;
	struct elf_info e = {0};
	struct note_state notes = {.where = "PT_NOTE segment"};
	struct load_range *ranges = NULL;
	unsigned nload = 0, nnote = 0;
	uint64_t low = UINT64_MAX, high = 0;
	bool entry_ok = false;
	int r;

	if (!p)
		len = 0;
	r = parse_ehdr(p, len, &e, err);
	if (r)
		return r;
	ranges = calloc(e.phnum, sizeof(*ranges));
	if (!ranges)
		return err_set(err, ENOMEM, "out of memory for %u program headers", e.phnum);

	/* Pass 1: validate every segment and find the note. */
	for (unsigned i = 0; i < e.phnum; i++) {
		struct elf_seg s;

		read_phdr(p, &e, i, &s);
		if (s.type == PT_NOTE) {
			if (!in_file(s.offset, s.filesz, len)) {
				r = err_set(err, ENOEXEC,
					    "ELF PT_NOTE segment %u (offset %#" PRIx64 ", %" PRIu64
					    " bytes) runs past the end of the file",
					    i, s.offset, s.filesz);
				goto out;
			}
			notes.index = i;
			nnote++;
			r = parse_notes(p + s.offset, s.filesz, note_align(s.align), &notes, err);
			if (r)
				goto out;
			continue;
		}
		if (s.type != PT_LOAD || s.memsz == 0)
			continue;
		if (s.filesz > s.memsz) {
			r = err_set(err, ENOEXEC,
				    "ELF segment %u: p_filesz %#" PRIx64 " > p_memsz %#" PRIx64, i,
				    s.filesz, s.memsz);
			goto out;
		}
		if (!in_file(s.offset, s.filesz, len)) {
			r = err_set(err, ENOEXEC,
				    "ELF segment %u: file data (offset %#" PRIx64 ", %#" PRIx64
				    " bytes) runs past the end of the file (%zu bytes)",
				    i, s.offset, s.filesz, len);
			goto out;
		}
		if (s.paddr > UINT64_MAX - s.memsz) {
			r = err_set(err, ENOEXEC,
				    "ELF segment %u: p_paddr %#" PRIx64 " + p_memsz %#" PRIx64
				    " overflows",
				    i, s.paddr, s.memsz);
			goto out;
		}
		uint64_t end = s.paddr + s.memsz;

		if (!guest_mem_ptr(m, s.paddr, s.memsz)) {
			r = err_set(err, ENOEXEC,
				    "ELF segment %u [%#" PRIx64 "-%#" PRIx64 ") %s (%" PRIu64
				    " MiB of RAM)",
				    i, s.paddr, end, range_problem(m, s.paddr, end),
				    m->ram_size >> 20);
			goto out;
		}
		if (s.paddr < LAYOUT_BOOT_END && end > LAYOUT_BOOT_START) {
			r = err_set(err, ENOEXEC,
				    "ELF segment %u [%#" PRIx64 "-%#" PRIx64
				    ") overlaps kvmini's boot structures [%#llx-%#llx)",
				    i, s.paddr, end, LAYOUT_BOOT_START, LAYOUT_BOOT_END);
			goto out;
		}
		ranges[nload++] = (struct load_range){s.paddr, end, s.paddr + s.filesz, i};
		low = s.paddr < low ? s.paddr : low;
		high = end > high ? end : high;
	}
	if (nload == 0) {
		r = err_set(err, ENOEXEC, "ELF has no loadable (PT_LOAD) segments");
		goto out;
	}
	qsort(ranges, nload, sizeof(*ranges), cmp_range);
	for (unsigned i = 1; i < nload; i++) {
		if (ranges[i].start < ranges[i - 1].end) {
			r = err_set(err, ENOEXEC,
				    "ELF segments %u [%#" PRIx64 "-%#" PRIx64 ") and %u [%#" PRIx64
				    "-%#" PRIx64 ") overlap",
				    ranges[i - 1].index, ranges[i - 1].start, ranges[i - 1].end,
				    ranges[i].index, ranges[i].start, ranges[i].end);
			goto out;
		}
	}
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

	for (unsigned i = 0; i < nload; i++)
		if (notes.entry >= ranges[i].start && notes.entry < ranges[i].file_end)
			entry_ok = true;
	if (!entry_ok) {
		r = err_set(err, ENOEXEC,
			    "ELF PVH entry %#" PRIx64
			    " is not inside the file data of any loaded segment",
			    notes.entry);
		goto out;
	}

	/* Pass 2: copy. Every range was checked above. */
	for (unsigned i = 0; i < e.phnum; i++) {
		struct elf_seg s;
		uint8_t *dst;

		read_phdr(p, &e, i, &s);
		if (s.type != PT_LOAD || s.memsz == 0)
			continue;
		dst = guest_mem_ptr(m, s.paddr, s.memsz);
		if (s.filesz)
			memcpy(dst, p + s.offset, s.filesz);
		memset(dst + s.filesz, 0, s.memsz - s.filesz);
	}
	img->entry = (uint32_t)notes.entry;
	img->load_low = low;
	img->load_high = high;
	r = 0;
out:
	free(ranges);
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
