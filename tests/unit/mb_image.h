/* SPDX-License-Identifier: MIT */
/*
 * A multiboot v1 image writer for test_multiboot and fuzz_load_multiboot:
 * one image of MBI_FILESZ bytes of patterned code/data plus MBI_MEMSZ -
 * MBI_FILESZ of bss, loaded at MBI_LOAD, with the multiboot header at the
 * start of the loaded bytes (MBI_AOUT_HDR into them for the address-fields
 * kind). The caller frees img.buf.
 */
#ifndef KVMINI_TEST_MB_IMAGE_H
#define KVMINI_TEST_MB_IMAGE_H

#include <elf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/multiboot.h"

#define MBI_LOAD     0x400000u
#define MBI_FILESZ   0x2000u
#define MBI_MEMSZ    0x5000u
#define MBI_ENTRY    (MBI_LOAD + 0x40u)
#define MBI_DATA_OFF 0x1000u		   /* the ELF kinds' segment data in the file */
#define MBI_AOUT_HDR 0x20u		   /* the address-fields kind's header offset */
#define MBI_VADDR64  0xffffffff80000000ull /* the ELF64 kind links here */

enum mbi_kind { MBI_ELF32, MBI_ELF64, MBI_AOUT };

struct mbi {
	uint8_t *buf;
	size_t len;
	size_t hdr; /* the header's offset in the file */
};

/* The loaded image's byte @i (header bytes aside). */
static inline uint8_t mbi_byte(size_t i)
{
	return (uint8_t)(i * 7 + 3);
}

static inline void mbi_put32(uint8_t *p, size_t off, uint32_t v)
{
	memcpy(p + off, &v, 4);
}

/* Set the header's flags and fix its checksum. */
static inline void mbi_set_flags(struct mbi *im, uint32_t flags)
{
	mbi_put32(im->buf, im->hdr + MB_HDR_FLAGS, flags);
	mbi_put32(im->buf, im->hdr + MB_HDR_CHECKSUM, -(MB_HEADER_MAGIC + flags));
}

/* An ELF header and one PT_LOAD program header of class @E (Elf32 or
 * Elf64), the segment's file data at MBI_DATA_OFF going to MBI_LOAD and
 * linked at @vaddr (p_vaddr != p_paddr: the loader moves e_entry to the
 * physical address, as for 64-bit kernels linked high). */
#define MBI_WRITE_ELF(p, E, class, machine, vaddr, flags)                                          \
	do {                                                                                       \
		E##_Ehdr eh = {                                                                    \
		    .e_ident = {ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, class, ELFDATA2LSB,            \
				EV_CURRENT},                                                       \
		    .e_type = ET_EXEC,                                                             \
		    .e_machine = machine,                                                          \
		    .e_version = EV_CURRENT,                                                       \
		    .e_entry = (vaddr) + (MBI_ENTRY - MBI_LOAD),                                   \
		    .e_phoff = sizeof(E##_Ehdr),                                                   \
		    .e_ehsize = sizeof(E##_Ehdr),                                                  \
		    .e_phentsize = sizeof(E##_Phdr),                                               \
		    .e_phnum = 1,                                                                  \
		};                                                                                 \
		E##_Phdr ph = {                                                                    \
		    .p_type = PT_LOAD,                                                             \
		    .p_offset = MBI_DATA_OFF,                                                      \
		    .p_vaddr = (vaddr),                                                            \
		    .p_paddr = MBI_LOAD,                                                           \
		    .p_filesz = MBI_FILESZ,                                                        \
		    .p_memsz = MBI_MEMSZ,                                                          \
		    .p_flags = (flags),                                                            \
		    .p_align = 0x1000,                                                             \
		};                                                                                 \
		memcpy(p, &eh, sizeof(eh));                                                        \
		memcpy((p) + sizeof(eh), &ph, sizeof(ph));                                         \
	} while (0)

/* A good image of @kind; NULL buf if out of memory. */
static inline struct mbi mbi_build(enum mbi_kind kind)
{
	size_t data = kind == MBI_AOUT ? 0 : MBI_DATA_OFF;
	struct mbi im = {.len = data + MBI_FILESZ};

	im.hdr = data + (kind == MBI_AOUT ? MBI_AOUT_HDR : 0);
	im.buf = calloc(1, im.len);
	if (!im.buf)
		return im;
	for (size_t i = 0; i < MBI_FILESZ; i++)
		im.buf[data + i] = mbi_byte(i);
	if (kind == MBI_ELF32)
		MBI_WRITE_ELF(im.buf, Elf32, ELFCLASS32, EM_386, MBI_LOAD, PF_R | PF_W | PF_X);
	else if (kind == MBI_ELF64)
		MBI_WRITE_ELF(im.buf, Elf64, ELFCLASS64, EM_X86_64, MBI_VADDR64 + MBI_LOAD,
			      PF_R | PF_X);
	mbi_put32(im.buf, im.hdr, MB_HEADER_MAGIC);
	if (kind != MBI_AOUT) {
		mbi_set_flags(&im, MB_HDR_F_PAGE_ALIGN | MB_HDR_F_MEMORY_INFO);
		return im;
	}
	mbi_set_flags(&im, MB_HDR_F_PAGE_ALIGN | MB_HDR_F_MEMORY_INFO | MB_HDR_F_ADDRESS);
	mbi_put32(im.buf, im.hdr + MB_HDR_HEADER_ADDR, MBI_LOAD + MBI_AOUT_HDR);
	mbi_put32(im.buf, im.hdr + MB_HDR_LOAD_ADDR, MBI_LOAD);
	mbi_put32(im.buf, im.hdr + MB_HDR_LOAD_END_ADDR, MBI_LOAD + MBI_FILESZ);
	mbi_put32(im.buf, im.hdr + MB_HDR_BSS_END_ADDR, MBI_LOAD + MBI_MEMSZ);
	mbi_put32(im.buf, im.hdr + MB_HDR_ENTRY_ADDR, MBI_ENTRY);
	return im;
}

/* Whether loaded byte @i is one the header covers (not mbi_byte(i)). */
static inline int mbi_in_header(enum mbi_kind kind, size_t i)
{
	size_t h = kind == MBI_AOUT ? MBI_AOUT_HDR : 0;

	return i >= h && i < h + (kind == MBI_AOUT ? MB_HDR_ADDR_SIZE : MB_HDR_MIN_SIZE);
}

#endif
