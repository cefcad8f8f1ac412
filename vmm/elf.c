// SPDX-License-Identifier: MIT
/*
 * ELF headers and PT_LOAD segments for the kernel loaders; see vmm/elf.h.
 * Headers are copied out with memcpy (offsets may be unaligned) after an
 * overflow-safe range check.
 */
#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/elf.h"
#include "vmm/layout.h"

bool elf_in_file(uint64_t off, uint64_t size, size_t len)
{
	return off <= len && size <= len - off;
}

_Static_assert(offsetof(Elf64_Ehdr, e_type) == offsetof(Elf32_Ehdr, e_type) &&
		   offsetof(Elf64_Ehdr, e_machine) == offsetof(Elf32_Ehdr, e_machine) &&
		   offsetof(Elf64_Ehdr, e_version) == offsetof(Elf32_Ehdr, e_version),
	       "ELF header prefix");

/* The class-specific ELF header fields of @h (an Elf32_Ehdr or Elf64_Ehdr). */
#define COPY_EHDR(e, h)                                                                            \
	do {                                                                                       \
		(e)->entry = (h).e_entry;                                                          \
		(e)->phoff = (h).e_phoff;                                                          \
		(e)->shoff = (h).e_shoff;                                                          \
		(e)->phentsize = (h).e_phentsize;                                                  \
		(e)->phnum = (h).e_phnum;                                                          \
		(e)->shentsize = (h).e_shentsize;                                                  \
		(e)->shnum = (h).e_shnum;                                                          \
	} while (0)

int elf_check_table(const char *kind, const char *pfx, uint64_t off, unsigned num, unsigned entsize,
		    size_t want, size_t len, struct errbuf *err)
{
	if (entsize != want)
		return err_set(err, ENOEXEC, "ELF e_%sentsize %u is not %zu", pfx, entsize, want);
	if (!elf_in_file(off, (uint64_t)num * want, len))
		return err_set(err, ENOEXEC,
			       "ELF %s headers (e_%soff %#" PRIx64
			       ", %u entries) run past the end of the file (%zu bytes)",
			       kind, pfx, off, num, len);
	return 0;
}

int elf_parse(const uint8_t *p, size_t len, struct elf_info *e, struct errbuf *err)
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
	type = get_le16(p + offsetof(Elf64_Ehdr, e_type));
	machine = get_le16(p + offsetof(Elf64_Ehdr, e_machine));
	version = get_le32(p + offsetof(Elf64_Ehdr, e_version));
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
	return elf_check_table("program", "ph", e->phoff, e->phnum, e->phentsize, want, len, err);
}

void elf_read_phdr(const uint8_t *p, const struct elf_info *e, unsigned i, struct elf_seg *s)
{
	if (e->is64) {
		Elf64_Phdr h;

		memcpy(&h, p + e->phoff + (uint64_t)i * sizeof(h), sizeof(h));
		*s = (struct elf_seg){h.p_type,	 h.p_flags,  h.p_offset, h.p_vaddr,
				      h.p_paddr, h.p_filesz, h.p_memsz,	 h.p_align};
	} else {
		Elf32_Phdr h;

		memcpy(&h, p + e->phoff + (uint64_t)i * sizeof(h), sizeof(h));
		*s = (struct elf_seg){h.p_type,	 h.p_flags,  h.p_offset, h.p_vaddr,
				      h.p_paddr, h.p_filesz, h.p_memsz,	 h.p_align};
	}
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
	const struct elf_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Segment @i, a PT_LOAD with memsz > 0: its range, or -ENOEXEC. */
static int check_load(const struct guest_mem *m, size_t len, const struct elf_seg *s, unsigned i,
		      const struct elf_avoid *avoid, unsigned navoid, struct elf_range *r,
		      struct errbuf *err)
{
	uint64_t end;

	if (s->filesz > s->memsz)
		return err_set(err, ENOEXEC,
			       "ELF segment %u: p_filesz %#" PRIx64 " > p_memsz %#" PRIx64, i,
			       s->filesz, s->memsz);
	if (!elf_in_file(s->offset, s->filesz, len))
		return err_set(err, ENOEXEC,
			       "ELF segment %u: file data (offset %#" PRIx64 ", %#" PRIx64
			       " bytes) runs past the end of the file (%zu bytes)",
			       i, s->offset, s->filesz, len);
	if (s->paddr > UINT64_MAX - s->memsz)
		return err_set(err, ENOEXEC,
			       "ELF segment %u: p_paddr %#" PRIx64 " + p_memsz %#" PRIx64
			       " overflows",
			       i, s->paddr, s->memsz);
	end = s->paddr + s->memsz;
	if (!guest_mem_ptr(m, s->paddr, s->memsz))
		return err_set(
		    err, ENOEXEC,
		    "ELF segment %u [%#" PRIx64 "-%#" PRIx64 ") %s (%" PRIu64 " MiB of RAM)", i,
		    s->paddr, end, range_problem(m, s->paddr, end), m->ram_size >> 20);
	for (unsigned k = 0; k < navoid; k++)
		if (s->paddr < avoid[k].end && end > avoid[k].start)
			return err_set(err, ENOEXEC,
				       "ELF segment %u [%#" PRIx64 "-%#" PRIx64
				       ") overlaps %s [%#" PRIx64 "-%#" PRIx64 ")",
				       i, s->paddr, end, avoid[k].what, avoid[k].start,
				       avoid[k].end);
	*r = (struct elf_range){s->paddr, end, s->paddr + s->filesz, i};
	return 0;
}

int elf_plan_loads(const struct guest_mem *m, const uint8_t *p, size_t len,
		   const struct elf_info *e, const struct elf_avoid *avoid, unsigned navoid,
		   struct elf_plan *pl, struct errbuf *err)
{
	int r;

	*pl = (struct elf_plan){.low = UINT64_MAX};
	pl->ranges = calloc(e->phnum, sizeof(*pl->ranges));
	if (!pl->ranges)
		return err_set(err, ENOMEM, "out of memory for %u program headers", e->phnum);
	for (unsigned i = 0; i < e->phnum; i++) {
		struct elf_seg s;
		struct elf_range *rg = &pl->ranges[pl->n];

		elf_read_phdr(p, e, i, &s);
		if (s.type != PT_LOAD || s.memsz == 0)
			continue;
		r = check_load(m, len, &s, i, avoid, navoid, rg, err);
		if (r)
			return r;
		pl->n++;
		pl->low = rg->start < pl->low ? rg->start : pl->low;
		pl->high = rg->end > pl->high ? rg->end : pl->high;
	}
	if (pl->n == 0)
		return err_set(err, ENOEXEC, "ELF has no loadable (PT_LOAD) segments");
	qsort(pl->ranges, pl->n, sizeof(*pl->ranges), cmp_range);
	for (unsigned i = 1; i < pl->n; i++) {
		const struct elf_range *a = &pl->ranges[i - 1], *b = &pl->ranges[i];

		if (b->start < a->end)
			return err_set(err, ENOEXEC,
				       "ELF segments %u [%#" PRIx64 "-%#" PRIx64
				       ") and %u [%#" PRIx64 "-%#" PRIx64 ") overlap",
				       a->index, a->start, a->end, b->index, b->start, b->end);
	}
	return 0;
}

void elf_plan_free(struct elf_plan *pl)
{
	free(pl->ranges);
	pl->ranges = NULL;
	pl->n = 0;
}

void elf_copy_loads(struct guest_mem *m, const uint8_t *p, const struct elf_info *e)
{
	for (unsigned i = 0; i < e->phnum; i++) {
		struct elf_seg s;
		uint8_t *dst;

		elf_read_phdr(p, e, i, &s);
		if (s.type != PT_LOAD || s.memsz == 0)
			continue;
		dst = guest_mem_ptr(m, s.paddr, s.memsz);
		if (s.filesz)
			memcpy(dst, p + s.offset, s.filesz);
		memset(dst + s.filesz, 0, s.memsz - s.filesz);
	}
}
