/* SPDX-License-Identifier: MIT */
/*
 * ELF loading shared by the kernel loaders that take ELF images (PVH,
 * vmm/pvh.h; multiboot, vmm/multiboot.h). Main thread, before any vCPU
 * runs. The image is trusted no more than the guest: every header is copied
 * out with memcpy after an overflow-safe range check, and elf_plan_loads
 * validates every segment before elf_copy_loads writes anything.
 */
#ifndef KVMINI_ELF_H
#define KVMINI_ELF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/memory.h"
#include "vmm/util.h"

/* The class-independent view of the ELF header. */
struct elf_info {
	bool is64;
	uint64_t entry; /* e_entry */
	uint64_t phoff, shoff;
	uint16_t phentsize, phnum, shentsize, shnum;
};

/* One program header. */
struct elf_seg {
	uint32_t type, flags;
	uint64_t offset, vaddr, paddr, filesz, memsz, align;
};

/* A PT_LOAD segment's place in guest memory. */
struct elf_range {
	uint64_t start, end; /* [p_paddr, p_paddr + p_memsz) */
	uint64_t file_end;   /* start + p_filesz */
	unsigned index;	     /* program header index, for messages */
};

/* A range no segment may overlap, named in the refusal. */
struct elf_avoid {
	uint64_t start, end;
	const char *what; /* e.g. "kvmini's boot structures" */
};

/* What elf_plan_loads found: the PT_LOAD ranges in address order. */
struct elf_plan {
	struct elf_range *ranges; /* owned: elf_plan_free */
	unsigned n;
	uint64_t low, high; /* lowest GPA loaded; highest, exclusive */
};

/* [off, off + size) lies inside [0, len), without overflow. Any thread. */
bool elf_in_file(uint64_t off, uint64_t size, size_t len);

/*
 * A header table (@kind "program" or "section", field prefix @pfx "ph" or
 * "sh") must have entries of exactly @want bytes and lie inside the file;
 * else -ENOEXEC naming the field.
 */
int elf_check_table(const char *kind, const char *pfx, uint64_t off, unsigned num, unsigned entsize,
		    size_t want, size_t len, struct errbuf *err);

/*
 * Parse and check the ELF header of @p[0..len) into *e. Accepted (else
 * -ENOEXEC naming the field): little-endian ELFCLASS64 with EM_X86_64, or
 * ELFCLASS32 with EM_386 or EM_X86_64; ET_EXEC; EI_VERSION and e_version 1;
 * e_phentsize exactly the class's Elf_Phdr size; 1 <= e_phnum < PN_XNUM;
 * the program header table inside the file.
 */
int elf_parse(const uint8_t *p, size_t len, struct elf_info *e, struct errbuf *err);

/* Program header @i of a parsed image (the table was range-checked). */
void elf_read_phdr(const uint8_t *p, const struct elf_info *e, unsigned i, struct elf_seg *s);

/*
 * Validate every PT_LOAD segment with p_memsz > 0 (others are skipped):
 * filesz <= memsz, file data inside the image, [p_paddr, p_paddr + p_memsz)
 * inside one RAM region of @m, not overlapping another segment or any of
 * @avoid[0..navoid). Fills *pl (free with elf_plan_free, also on error).
 * -ENOEXEC naming the segment and field, or "no loadable (PT_LOAD)
 * segments"; -ENOMEM.
 */
int elf_plan_loads(const struct guest_mem *m, const uint8_t *p, size_t len,
		   const struct elf_info *e, const struct elf_avoid *avoid, unsigned navoid,
		   struct elf_plan *pl, struct errbuf *err);
void elf_plan_free(struct elf_plan *pl);

/* Copy the PT_LOAD segments elf_plan_loads accepted into @m, zeroing
 * p_memsz beyond p_filesz. */
void elf_copy_loads(struct guest_mem *m, const uint8_t *p, const struct elf_info *e);

#endif
