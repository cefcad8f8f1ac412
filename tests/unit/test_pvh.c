/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for vmm/pvh.c. ELF images are assembled in memory by
 * build_elf() from a small spec; each rejection test mutates one field of a
 * valid image. A deterministic fuzz loop mutates valid images at random.
 */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/layout.h"
#include "vmm/pvh.h"
#include "ram_fixture.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define RAM (16 * MiB)

/* ---- building images ---- */

struct seg_spec {
	uint64_t paddr, filesz, memsz;
};

struct elf_spec {
	int bits; /* 64 or 32 */
	uint64_t entry;
	int descsz;	     /* of the PVH note: 4 or 8; 0 = no PVH note */
	bool pt_note;	     /* notes reachable through a PT_NOTE segment */
	bool sections;	     /* section header table with a SHT_NOTE section */
	unsigned note_align; /* 4 or 8 (p_align / sh_addralign of the notes) */
	int nload;
	struct seg_spec load[4];
};

struct built {
	uint8_t *buf;
	size_t len;
	int bits;
	size_t phoff;
	int phnum;
	int note_ph;	    /* index of the PT_NOTE phdr or -1 */
	size_t data_off[4]; /* file offset of each PT_LOAD's data */
	size_t notes_off, notes_len;
	size_t pvh_note_off; /* offset of the PVH note's header */
	size_t shoff;
	int shnum;
};

static const struct elf_spec default_spec = {
    .bits = 64,
    .entry = 0x100040,
    .descsz = 4,
    .pt_note = true,
    .sections = true,
    .note_align = 4,
    .nload = 2,
    .load = {{0x100000, 0x1800, 0x3000}, {0x200000, 0x100, 0x100}},
};

static uint8_t data_byte(int seg, size_t i)
{
	return (uint8_t)(0x11 * (seg + 1) + i * 7);
}

static size_t add_note(uint8_t *p, size_t off, unsigned align, const char *name, uint32_t type,
		       const void *desc, uint32_t descsz)
{
	uint32_t namesz = (uint32_t)strlen(name) + 1;
	uint32_t h[3] = {namesz, descsz, type};

	memcpy(p + off, h, 12);
	off += 12;
	memcpy(p + off, name, namesz);
	off += (namesz + align - 1) / align * align;
	memcpy(p + off, desc, descsz);
	off += (descsz + align - 1) / align * align;
	return off;
}

/*
 * The headers of build_elf() for either class: Ehdr/Phdr/Shdr are the ELF
 * types, vbase the virtual base of the segments. Uses build_elf's locals.
 */
#define EMIT_HEADERS(Ehdr, Phdr, Shdr, class, machine, vbase)                                      \
	do {                                                                                       \
		Ehdr eh = {                                                                        \
		    .e_ident = {ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, class, ELFDATA2LSB,            \
				EV_CURRENT},                                                       \
		    .e_type = ET_EXEC,                                                             \
		    .e_machine = machine,                                                          \
		    .e_version = EV_CURRENT,                                                       \
		    .e_entry = vbase + 0x1000000,                                                  \
		    .e_phoff = b.phoff,                                                            \
		    .e_shoff = b.shoff,                                                            \
		    .e_ehsize = sizeof(Ehdr),                                                      \
		    .e_phentsize = sizeof(Phdr),                                                   \
		    .e_phnum = (uint16_t)b.phnum,                                                  \
		    .e_shentsize = s->sections ? sizeof(Shdr) : 0,                                 \
		    .e_shnum = (uint16_t)b.shnum,                                                  \
		};                                                                                 \
		Phdr ph[6] = {{0}};                                                                \
		Shdr sh[2] = {{0}};                                                                \
                                                                                                   \
		for (int i = 0; i < s->nload; i++)                                                 \
			ph[n++] = (Phdr){.p_type = PT_LOAD,                                        \
					 .p_flags = PF_R | PF_X,                                   \
					 .p_offset = b.data_off[i],                                \
					 .p_vaddr = vbase + s->load[i].paddr,                      \
					 .p_paddr = s->load[i].paddr,                              \
					 .p_filesz = s->load[i].filesz,                            \
					 .p_memsz = s->load[i].memsz,                              \
					 .p_align = 0x1000};                                       \
		if (s->pt_note) {                                                                  \
			b.note_ph = n;                                                             \
			ph[n++] = (Phdr){.p_type = PT_NOTE,                                        \
					 .p_offset = b.notes_off,                                  \
					 .p_filesz = b.notes_len,                                  \
					 .p_memsz = b.notes_len,                                   \
					 .p_align = a};                                            \
		}                                                                                  \
		ph[n++] = (Phdr){.p_type = PT_GNU_STACK, .p_flags = PF_R | PF_W};                  \
		sh[1] = (Shdr){.sh_type = SHT_NOTE,                                                \
			       .sh_offset = b.notes_off,                                           \
			       .sh_size = b.notes_len,                                             \
			       .sh_addralign = a};                                                 \
		memcpy(b.buf, &eh, sizeof(eh));                                                    \
		memcpy(b.buf + b.phoff, ph, (size_t)n * sizeof(ph[0]));                            \
		if (s->sections)                                                                   \
			memcpy(b.buf + b.shoff, sh, sizeof(sh));                                   \
	} while (0)

static struct built build_elf(const struct elf_spec *s)
{
	struct built b = {.bits = s->bits, .note_ph = -1};
	size_t ehsz = s->bits == 64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	size_t shsz = s->bits == 64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
	size_t off = 0x1000, cap = 0x10000;
	unsigned a = s->note_align;

	b.buf = calloc(1, cap);
	assert_non_null(b.buf);
	b.phoff = ehsz;
	b.phnum = s->nload + (s->pt_note ? 1 : 0) + 1; /* + PT_GNU_STACK */

	for (int i = 0; i < s->nload; i++) {
		b.data_off[i] = off;
		assert_true(off + s->load[i].filesz < cap / 2);
		for (size_t j = 0; j < s->load[i].filesz; j++)
			b.buf[off + j] = data_byte(i, j);
		off = (off + s->load[i].filesz + 0xfff) & ~(size_t)0xfff;
	}

	/* Notes: a GNU build id, the PVH entry, another Xen note. */
	uint8_t build_id[20];
	uint64_t entry = s->entry;

	memset(build_id, 0xb1, sizeof(build_id));
	b.notes_off = off;
	off = add_note(b.buf, off, a, "GNU", NT_GNU_BUILD_ID, build_id, sizeof(build_id));
	b.pvh_note_off = off;
	if (s->descsz)
		off = add_note(b.buf, off, a, "Xen", XEN_ELFNOTE_PHYS32_ENTRY, &entry,
			       (uint32_t)s->descsz);
	off = add_note(b.buf, off, a, "Xen", 6 /* XEN_ELFNOTE_LOADER */, "generic", 8);
	b.notes_len = off - b.notes_off;
	off = (off + 7) & ~(size_t)7;

	b.shoff = s->sections ? off : 0;
	b.shnum = s->sections ? 2 : 0; /* null section, .notes */
	b.len = off + (size_t)b.shnum * shsz;
	assert_true(b.len <= cap);

	int n = 0;
	if (s->bits == 64)
		EMIT_HEADERS(Elf64_Ehdr, Elf64_Phdr, Elf64_Shdr, ELFCLASS64, EM_X86_64,
			     0xffffffff80000000ULL);
	else
		EMIT_HEADERS(Elf32_Ehdr, Elf32_Phdr, Elf32_Shdr, ELFCLASS32, EM_386, 0);
	assert_int_equal(n, b.phnum);
	return b;
}

static struct built build_default(void)
{
	return build_elf(&default_spec);
}

/* Typed access to headers of a built image (the buffer is malloc-aligned and
 * every header offset is a multiple of 8). */
static Elf64_Ehdr *eh64(struct built *b)
{
	return (Elf64_Ehdr *)b->buf;
}

static Elf64_Phdr *ph64(struct built *b, int i)
{
	return (Elf64_Phdr *)(b->buf + b->phoff) + i;
}

static Elf32_Phdr *ph32(struct built *b, int i)
{
	return (Elf32_Phdr *)(b->buf + b->phoff) + i;
}

static Elf64_Shdr *sh64(struct built *b, int i)
{
	return (Elf64_Shdr *)(b->buf + b->shoff) + i;
}

/* Note header words of the PVH note: [0] namesz, [1] descsz, [2] type. */
static uint32_t *pvh_note(struct built *b)
{
	return (uint32_t *)(b->buf + b->pvh_note_off);
}

/* ---- running the loader ---- */

static int setup(void **state)
{
	return ram_fixture_setup(state, RAM);
}

/* How much of a region poison() covers: all of the small test RAM, the
 * start of large (sparse) ones. */
static uint64_t poison_len(const struct guest_mem_region *r)
{
	return r->size <= RAM ? r->size : 8 * MiB;
}

/* Fill RAM with a sentinel so that writes (and zero fills) show. */
static void poison(struct guest_mem *m)
{
	for (int i = 0; i < m->nregions; i++)
		memset(m->regions[i].host, 0x5a, poison_len(&m->regions[i]));
}

static bool untouched(const struct guest_mem *m)
{
	for (int i = 0; i < m->nregions; i++) {
		uint64_t n = poison_len(&m->regions[i]);

		for (uint64_t j = 0; j < n; j++)
			if (m->regions[i].host[j] != 0x5a)
				return false;
	}
	return true;
}

static void expect_reject_mem(struct guest_mem *m, struct built *b, const char *what)
{
	struct errbuf err = {{0}};
	struct pvh_image img = {0};
	int r;

	poison(m);
	r = pvh_load_elf(m, b->buf, b->len, &img, &err);
	if (r != -ENOEXEC || !strstr(err.msg, what))
		fail_msg("expected -ENOEXEC and \"%s\", got %d \"%s\"", what, r, err.msg);
	assert_null(strchr(err.msg, '\n'));
	/* Validation comes before any write. */
	assert_true(untouched(m));
	free(b->buf);
	b->buf = NULL;
}

static void expect_reject(void **state, struct built *b, const char *what)
{
	struct fixture *f = *state;

	expect_reject_mem(&f->m, b, what);
}

static void load_ok(struct guest_mem *m, struct built *b, struct pvh_image *img)
{
	struct errbuf err = {{0}};
	int r = pvh_load_elf(m, b->buf, b->len, img, &err);

	if (r)
		fail_msg("pvh_load_elf: %d %s", r, err.msg);
}

/* ---- good images ---- */

static void check_default_load(struct fixture *f, const struct pvh_image *img)
{
	const struct seg_spec *l = default_spec.load;

	assert_int_equal(img->entry, 0x100040);
	assert_int_equal(img->load_low, 0x100000);
	assert_int_equal(img->load_high, 0x200100);
	for (size_t j = 0; j < l[0].filesz; j++)
		if (*ram(f, l[0].paddr + j) != data_byte(0, j))
			fail_msg("segment 0 byte %zu", j);
	/* bss zero-filled over the poison, and nothing written past memsz */
	for (size_t j = l[0].filesz; j < l[0].memsz; j++)
		if (*ram(f, l[0].paddr + j) != 0)
			fail_msg("bss byte %zu not zero", j);
	assert_int_equal(*ram(f, l[0].paddr + l[0].memsz), 0x5a);
	assert_int_equal(*ram(f, l[0].paddr - 1), 0x5a);
	for (size_t j = 0; j < l[1].filesz; j++)
		if (*ram(f, l[1].paddr + j) != data_byte(1, j))
			fail_msg("segment 1 byte %zu", j);
	assert_int_equal(*ram(f, l[1].paddr + l[1].memsz), 0x5a);
	/* the boot area is not the loader's */
	assert_int_equal(*ram(f, LAYOUT_BOOT_START), 0x5a);
}

static void test_good_elf64(void **state)
{
	struct fixture *f = *state;
	struct built b = build_default();
	struct pvh_image img;

	poison(&f->m);
	load_ok(&f->m, &b, &img);
	check_default_load(f, &img);
	free(b.buf);
}

static void test_good_elf32(void **state)
{
	struct fixture *f = *state;
	struct elf_spec s = default_spec;
	struct pvh_image img;

	s.bits = 32;
	struct built b = build_elf(&s);

	poison(&f->m);
	load_ok(&f->m, &b, &img);
	check_default_load(f, &img);
	free(b.buf);

	/* ELF32 with EM_X86_64 is accepted too. */
	b = build_elf(&s);
	((Elf32_Ehdr *)b.buf)->e_machine = EM_X86_64;
	load_ok(&f->m, &b, &img);
	assert_int_equal(img.entry, 0x100040);
	free(b.buf);
}

/* Build @s, load it, check the entry, free. */
static void load_spec_ok(struct fixture *f, const struct elf_spec *s)
{
	struct built b = build_elf(s);
	struct pvh_image img;

	load_ok(&f->m, &b, &img);
	assert_int_equal(img.entry, s->entry);
	free(b.buf);
}

static void test_good_variants(void **state)
{
	struct fixture *f = *state;
	struct pvh_image img;
	struct elf_spec s;
	struct built b;

	/* Linux style: 8-byte descriptor. */
	s = default_spec;
	s.descsz = 8;
	load_spec_ok(f, &s);

	/* 8-byte note alignment. */
	s.note_align = 8;
	load_spec_ok(f, &s);

	/* Note only in a SHT_NOTE section. */
	s = default_spec;
	s.pt_note = false;
	load_spec_ok(f, &s);
	s.bits = 32;
	load_spec_ok(f, &s);

	/* No section headers at all. */
	s = default_spec;
	s.sections = false;
	b = build_elf(&s);
	load_ok(&f->m, &b, &img);
	free(b.buf);

	/* Broken section headers do not matter when a PT_NOTE has the note. */
	b = build_default();
	eh64(&b)->e_shoff = 0xffffffffffffff00ULL;
	load_ok(&f->m, &b, &img);
	free(b.buf);

	/* Entry on the last file byte; segments next to the boot area; an empty
	 * PT_LOAD is skipped; all-bss segment (filesz 0). */
	s = default_spec;
	s.nload = 4;
	s.load[0] = (struct seg_spec){0x3000, 0x100, 0x100};
	s.load[1] = (struct seg_spec){0x0, 0x1000, 0x1000};
	s.load[2] = (struct seg_spec){0x5000, 0, 0};
	s.load[3] = (struct seg_spec){0x100000, 0, 0x10000};
	s.entry = 0x30ff;
	b = build_elf(&s);
	poison(&f->m);
	load_ok(&f->m, &b, &img);
	assert_int_equal(img.entry, 0x30ff);
	assert_int_equal(img.load_low, 0);
	assert_int_equal(img.load_high, 0x110000);
	assert_int_equal(*ram(f, 0x100000), 0);
	assert_int_equal(*ram(f, 0x10ffff), 0);
	assert_int_equal(*ram(f, 0x5000), 0x5a); /* memsz 0: nothing written */
	free(b.buf);

	/* A zero-padded tail after the last note is fine. */
	b = build_default();
	ph64(&b, b.note_ph)->p_filesz += 8;
	load_ok(&f->m, &b, &img);
	free(b.buf);

	/* The last note's descriptor padding may be missing (desc 5 bytes). */
	s = default_spec;
	b = build_elf(&s);
	{
		/* Make the trailing "generic" loader note's descsz 5, cut the padding. */
		uint32_t *last = (uint32_t *)(b.buf + b.notes_off + b.notes_len - 12 - 4 - 8);

		assert_int_equal(last[1], 8);
		last[1] = 5;
		ph64(&b, b.note_ph)->p_filesz -= 3;
	}
	load_ok(&f->m, &b, &img);
	free(b.buf);

	/* Two agreeing PVH notes (in the segment, and again via a second PT_NOTE). */
	b = build_default();
	ph64(&b, b.phnum - 1)->p_type = PT_NOTE; /* turn PT_GNU_STACK into a note */
	ph64(&b, b.phnum - 1)->p_offset = b.pvh_note_off;
	ph64(&b, b.phnum - 1)->p_filesz = 20;
	load_ok(&f->m, &b, &img);
	free(b.buf);
}

static void test_high_ram(void **state)
{
	struct guest_mem m;
	struct pvh_image img;
	struct elf_spec s = default_spec;
	struct built b;

	assert_int_equal(guest_mem_init(&m, 4 * GiB), 0);
	/* A segment above 4 GiB (ELF64 only) is loaded. */
	s.nload = 3;
	s.load[2] = (struct seg_spec){LAYOUT_MMIO32_END + 0x1000, 0x100, 0x2000};
	b = build_elf(&s);
	load_ok(&m, &b, &img);
	assert_int_equal(img.load_high, LAYOUT_MMIO32_END + 0x3000);
	assert_int_equal(*(uint8_t *)guest_mem_ptr(&m, LAYOUT_MMIO32_END + 0x1000, 1),
			 data_byte(2, 0));
	free(b.buf);

	/* Ending exactly at the end of low RAM is fine, one byte more is the hole. */
	s.load[2] = (struct seg_spec){LAYOUT_MMIO32_START - 0x1000, 0x100, 0x1000};
	b = build_elf(&s);
	load_ok(&m, &b, &img);
	free(b.buf);
	s.load[2].memsz = 0x1001;
	b = build_elf(&s);
	expect_reject_mem(&m, &b, "PCI hole");
	s.load[2] = (struct seg_spec){LAYOUT_IOAPIC, 0x100, 0x100};
	b = build_elf(&s);
	expect_reject_mem(&m, &b, "PCI hole");
	/* Straddling the end of high RAM. */
	s.load[2] = (struct seg_spec){LAYOUT_MMIO32_END + GiB - 0x100, 0x100, 0x200};
	b = build_elf(&s);
	expect_reject_mem(&m, &b, "runs past the end of RAM");
	guest_mem_free(&m);
}

/* ---- rejections: one field each ---- */

static void test_reject_truncated(void **state)
{
	struct built b;

	b = build_default();
	b.len = 0;
	expect_reject(state, &b, "truncated");
	b = build_default();
	b.len = 15;
	expect_reject(state, &b, "truncated");
	b = build_default();
	b.len = sizeof(Elf64_Ehdr) - 1;
	expect_reject(state, &b, "ELF64 header needs 64");
	b = build_default();
	b.len = sizeof(Elf32_Ehdr); /* a full ELF32 header is still short for ELF64 */
	expect_reject(state, &b, "truncated");
	/* Program header table cut by the end of the file. */
	b = build_default();
	b.len = b.phoff + 2 * sizeof(Elf64_Phdr) + 10;
	expect_reject(state, &b, "program headers");
	/* Segment data cut. */
	b = build_default();
	b.len = b.data_off[0] + 0x100;
	expect_reject(state, &b, "segment 0: file data");

	/* NULL image */
	struct fixture *f = *state;
	struct errbuf err;
	struct pvh_image img;

	assert_int_equal(pvh_load_elf(&f->m, NULL, 100, &img, &err), -ENOEXEC);
}

/* One ELF64 header field set to a bad value. */
struct ehdr_case {
	size_t off, size;
	uint64_t val;
	const char *msg;
};

#define EH(field, v, m)                                                                            \
	{                                                                                          \
		offsetof(Elf64_Ehdr, field), sizeof(((Elf64_Ehdr *)0)->field), v, m                \
	}
#define ID(i, v, m)                                                                                \
	{                                                                                          \
		i, 1, v, m                                                                         \
	}

static const struct ehdr_case ehdr_cases[] = {
    ID(EI_MAG1, 'F', "bad magic"),
    ID(EI_MAG3, 0, "bad magic"),
    ID(EI_CLASS, ELFCLASSNONE, "class 0"),
    ID(EI_CLASS, 3, "class 3"),
    ID(EI_DATA, ELFDATA2MSB, "little-endian"),
    ID(EI_VERSION, 0, "ident version 0"),
    EH(e_version, 2, "ELF version 2"),
    EH(e_machine, EM_AARCH64, "ELF64 machine 183"),
    EH(e_machine, EM_386, "ELF64 machine 3"), /* ELF64 i386 is nonsense */
    EH(e_type, ET_DYN, "type 3 is not ET_EXEC"),
    EH(e_type, ET_REL, "type 1 is not ET_EXEC"),
    EH(e_type, ET_CORE, "ET_EXEC"),
    EH(e_phnum, 0, "no program headers"),
    EH(e_phnum, PN_XNUM, "PN_XNUM"),
    EH(e_phnum, 5000, "program headers (e_phoff 0x40, 5000 entries) run past the end"),
    EH(e_phoff, 0x10000, "program headers"),
    EH(e_phoff, UINT64_MAX - 8, "program headers"), /* phoff + size overflows */
    EH(e_phentsize, sizeof(Elf32_Phdr), "e_phentsize 32 is not 56"),
    EH(e_phentsize, 64, "e_phentsize 64"),
};

static void test_reject_ehdr(void **state)
{
	for (size_t i = 0; i < sizeof(ehdr_cases) / sizeof(ehdr_cases[0]); i++) {
		const struct ehdr_case *c = &ehdr_cases[i];
		struct built b = build_default();

		memcpy(b.buf + c->off, &c->val, c->size); /* little-endian host */
		expect_reject(state, &b, c->msg);
	}

	/* ELF32: its own machine and phentsize checks. */
	struct elf_spec s = default_spec;
	struct built b;

	s.bits = 32;
	b = build_elf(&s);
	((Elf32_Ehdr *)b.buf)->e_machine = EM_ARM;
	expect_reject(state, &b, "ELF32 machine 40");
	b = build_elf(&s);
	((Elf32_Ehdr *)b.buf)->e_phentsize = sizeof(Elf64_Phdr);
	expect_reject(state, &b, "e_phentsize 56 is not 32");
}

static void test_reject_segments(void **state)
{
	struct built b;
	struct elf_spec s;

	b = build_default();
	ph64(&b, 0)->p_filesz = ph64(&b, 0)->p_memsz + 1;
	expect_reject(state, &b, "p_filesz 0x3001 > p_memsz 0x3000");
	b = build_default();
	ph64(&b, 1)->p_offset = b.len - 0x80; /* 0x100 bytes from 0x80 before the end */
	expect_reject(state, &b, "segment 1: file data");
	b = build_default();
	ph64(&b, 1)->p_offset = UINT64_MAX - 0x10; /* offset + filesz wraps */
	expect_reject(state, &b, "segment 1: file data");
	b = build_default();
	ph64(&b, 1)->p_offset = UINT64_MAX;
	ph64(&b, 1)->p_filesz = 0; /* offset alone past the end */
	expect_reject(state, &b, "segment 1: file data");
	b = build_default();
	ph64(&b, 1)->p_paddr = UINT64_MAX - 0x10; /* paddr + memsz wraps */
	expect_reject(state, &b, "overflows");
	b = build_default();
	ph64(&b, 1)->p_paddr = RAM - 0x80; /* straddles the end of RAM */
	expect_reject(state, &b, "runs past the end of RAM");
	b = build_default();
	ph64(&b, 1)->p_paddr = RAM; /* one past */
	expect_reject(state, &b, "outside guest RAM");
	b = build_default();
	ph64(&b, 1)->p_paddr = 0x40000000;
	expect_reject(state, &b, "outside guest RAM");
	b = build_default();
	ph64(&b, 1)->p_paddr = LAYOUT_MMIO32_START + 0x1000;
	expect_reject(state, &b, "PCI hole");
	b = build_default();
	ph64(&b, 1)->p_paddr = LAYOUT_MMIO32_END; /* no RAM above 4 GiB with 16 MiB */
	expect_reject(state, &b, "outside guest RAM");

	/* Overlaps: the second segment starts inside the first's bss. */
	b = build_default();
	ph64(&b, 1)->p_paddr = 0x102fff;
	expect_reject(state, &b,
		      "segments 0 [0x100000-0x103000) and 1 [0x102fff-0x1030ff) "
		      "overlap");
	/* Identical ranges, and an order the sort must handle (later segment lower). */
	b = build_default();
	ph64(&b, 1)->p_paddr = 0x100000;
	expect_reject(state, &b, "overlap");
	b = build_default();
	ph64(&b, 1)->p_paddr = 0xfff01;
	expect_reject(state, &b, "overlap");
	/* Touching is fine: covered by test_good_variants. */

	/* Boot structures. */
	s = default_spec;
	s.nload = 3;
	s.load[2] = (struct seg_spec){0x2000, 0x10, 0x10};
	b = build_elf(&s);
	expect_reject(state, &b, "boot structures");
	s.load[2] = (struct seg_spec){0x0, 0x10, 0x1001};
	b = build_elf(&s);
	expect_reject(state, &b, "boot structures");
	s.load[2] = (struct seg_spec){LAYOUT_BOOT_END - 1, 0x1, 0x1};
	b = build_elf(&s);
	expect_reject(state, &b, "boot structures");

	/* No PT_LOAD with memory. */
	b = build_default();
	ph64(&b, 0)->p_type = PT_NULL;
	ph64(&b, 1)->p_memsz = 0;
	ph64(&b, 1)->p_filesz = 0;
	expect_reject(state, &b, "no loadable");
}

static void test_reject_elf32_segments(void **state)
{
	struct elf_spec s = default_spec;
	struct built b;

	s.bits = 32;
	b = build_elf(&s);
	ph32(&b, 0)->p_filesz = 0x3001;
	expect_reject(state, &b, "p_filesz");
	b = build_elf(&s);
	ph32(&b, 1)->p_paddr = 0xffffff80; /* + 0x100 wraps in 32 bits, not in 64 */
	expect_reject(state, &b, "PCI hole");
	b = build_elf(&s);
	ph32(&b, 1)->p_offset = 0xfffffff0;
	expect_reject(state, &b, "file data");
	b = build_elf(&s);
	ph32(&b, 1)->p_paddr = 0x100100;
	expect_reject(state, &b, "overlap");
}

static void test_reject_notes(void **state)
{
	struct built b;
	struct elf_spec s;

	/* No PVH note anywhere. */
	s = default_spec;
	s.descsz = 0;
	b = build_elf(&s);
	expect_reject(state, &b, "no PVH entry note");
	s.pt_note = false;
	b = build_elf(&s);
	expect_reject(state, &b, "no PVH entry note");
	s.sections = false;
	b = build_elf(&s);
	expect_reject(state, &b,
		      "no PVH entry note (Xen XEN_ELFNOTE_PHYS32_ENTRY) in its 0 PT_NOTE");
	/* Right name, wrong type; right type, wrong name. */
	b = build_default();
	pvh_note(&b)[2] = 17;
	expect_reject(state, &b, "no PVH entry note");
	b = build_default();
	memcpy(b.buf + b.pvh_note_off + 12, "Xem", 4);
	expect_reject(state, &b, "no PVH entry note");
	b = build_default();
	pvh_note(&b)[0] = 3; /* namesz 3: "Xen" without NUL is not the Xen note */
	expect_reject(state, &b, "no PVH entry note");

	/* Note segment out of the file. */
	b = build_default();
	ph64(&b, b.note_ph)->p_offset = b.len - 4;
	expect_reject(state, &b, "PT_NOTE segment 2 (offset");
	b = build_default();
	ph64(&b, b.note_ph)->p_filesz = UINT64_MAX;
	expect_reject(state, &b, "PT_NOTE segment 2");

	/* Name / descriptor sizes running past the segment. */
	b = build_default();
	pvh_note(&b)[0] = 0xfffffff0;
	expect_reject(state, &b, "note name");
	b = build_default();
	pvh_note(&b)[0] = UINT32_MAX; /* padding must not wrap */
	expect_reject(state, &b, "note name");
	b = build_default();
	pvh_note(&b)[1] = 0x1000;
	expect_reject(state, &b, "note descriptor");
	b = build_default();
	pvh_note(&b)[1] = UINT32_MAX;
	expect_reject(state, &b, "note descriptor");
	/* The segment ends inside a note header. */
	b = build_default();
	ph64(&b, b.note_ph)->p_filesz = b.pvh_note_off - b.notes_off + 8;
	expect_reject(state, &b, "note header at offset 0x24 is truncated");
	/* Trailing non-zero bytes shorter than a header. */
	b = build_default();
	ph64(&b, b.note_ph)->p_filesz += 4;
	b.buf[b.notes_off + b.notes_len + 1] = 1;
	expect_reject(state, &b, "is truncated");

	/* Descriptor size. */
	b = build_default();
	pvh_note(&b)[1] = 2;
	expect_reject(state, &b, "2-byte descriptor");
	s = default_spec;
	s.descsz = 8;
	s.entry = 0x100000040ULL;
	b = build_elf(&s);
	expect_reject(state, &b, "not below 4 GiB");

	/* Conflicting notes: a second PT_NOTE (the PT_GNU_STACK slot) holds a copy of
	 * the PVH note, placed in the unused file gap after segment 0's data, with
	 * another entry. */
	b = build_default();
	{
		size_t copy = b.data_off[0] + default_spec.load[0].filesz;

		assert_true(copy + 20 <= b.data_off[1]);
		memcpy(b.buf + copy, b.buf + b.pvh_note_off, 20);
		*(uint32_t *)(b.buf + copy + 16) = 0x100080;
		ph64(&b, b.phnum - 1)->p_type = PT_NOTE;
		ph64(&b, b.phnum - 1)->p_offset = copy;
		ph64(&b, b.phnum - 1)->p_filesz = 20;
	}
	expect_reject(state, &b, "conflicting PVH notes (0x100040 and 0x100080)");

	/* Notes in sections (no PT_NOTE): section table checks. */
	s = default_spec;
	s.pt_note = false;
	b = build_elf(&s);
	eh64(&b)->e_shentsize = 40;
	expect_reject(state, &b, "e_shentsize 40 is not 64");
	b = build_elf(&s);
	eh64(&b)->e_shoff = b.len - 8;
	expect_reject(state, &b, "section headers");
	b = build_elf(&s);
	eh64(&b)->e_shnum = 0xffff;
	expect_reject(state, &b, "section headers");
	b = build_elf(&s);
	sh64(&b, 1)->sh_offset = b.len;
	expect_reject(state, &b, "SHT_NOTE section 1");
	b = build_elf(&s);
	sh64(&b, 1)->sh_size = UINT64_MAX - 4;
	expect_reject(state, &b, "SHT_NOTE section 1");
	b = build_elf(&s);
	pvh_note(&b)[1] = 0x1000;
	expect_reject(state, &b, "SHT_NOTE section 1: note descriptor");
}

static void test_reject_entry(void **state)
{
	struct elf_spec s = default_spec;
	struct built b;

	s.entry = 0x102000; /* in segment 0's bss */
	b = build_elf(&s);
	expect_reject(state, &b, "entry 0x102000 is not inside the file data");
	s.entry = 0x101800; /* first bss byte */
	b = build_elf(&s);
	expect_reject(state, &b, "not inside");
	s.entry = 0x180000; /* between segments */
	b = build_elf(&s);
	expect_reject(state, &b, "not inside");
	s.entry = 0;
	b = build_elf(&s);
	expect_reject(state, &b, "not inside");
	s.entry = 0x2000ff; /* last byte of segment 1: fine */
	b = build_elf(&s);
	struct fixture *f = *state;
	struct pvh_image img;

	load_ok(&f->m, &b, &img);
	assert_int_equal(img.entry, 0x2000ff);
	free(b.buf);
}

/* ---- start_info ---- */

static void read_start_info(struct guest_mem *m, struct hvm_start_info *si,
			    struct hvm_memmap_table_entry *map)
{
	assert_int_equal(guest_mem_read(m, LAYOUT_START_INFO, si, sizeof(*si)), 0);
	assert_int_equal(si->magic, XEN_HVM_START_MAGIC_VALUE);
	assert_int_equal(si->version, 1);
	assert_int_equal(si->flags, 0);
	assert_int_equal(si->rsdp_paddr, 0);
	assert_int_equal(si->reserved, 0);
	assert_int_equal(si->memmap_paddr, LAYOUT_MEMMAP);
	assert_in_range(si->memmap_entries, 1, LAYOUT_MEMMAP_MAX);
	assert_int_equal(guest_mem_read(m, LAYOUT_MEMMAP, map, si->memmap_entries * sizeof(*map)),
			 0);
}

static void check_map_entry(const struct hvm_memmap_table_entry *e, uint64_t addr, uint64_t size,
			    uint32_t type)
{
	if (e->addr != addr || e->size != size || e->type != type || e->reserved)
		fail_msg("memmap entry {%#llx, %#llx, %u}, expected {%#llx, %#llx, %u}",
			 (unsigned long long)e->addr, (unsigned long long)e->size, e->type,
			 (unsigned long long)addr, (unsigned long long)size, type);
}

static void test_start_info_basic(void **state)
{
	struct fixture *f = *state;
	struct hvm_start_info si;
	struct hvm_memmap_table_entry map[LAYOUT_MEMMAP_MAX];
	struct errbuf err = {{0}};
	uint64_t gpa = 0;
	char cmd[64];
	uint64_t gdt[PVH_GDT_ENTRIES];

	poison(&f->m);
	assert_int_equal(
	    pvh_setup_start_info(&f->m, "console=ttyS0 hello", NULL, 0, 0x300000, 0, &gpa, &err),
	    0);
	assert_int_equal(gpa, LAYOUT_START_INFO);
	read_start_info(&f->m, &si, map);
	assert_int_equal(si.nr_modules, 0);
	assert_int_equal(si.modlist_paddr, 0);
	assert_int_equal(si.cmdline_paddr, LAYOUT_CMDLINE);
	assert_int_equal(guest_mem_read(&f->m, LAYOUT_CMDLINE, cmd, sizeof(cmd)), 0);
	assert_string_equal(cmd, "console=ttyS0 hello");

	assert_int_equal(si.memmap_entries, 5);
	check_map_entry(&map[0], 0, 0xa0000, XEN_HVM_MEMMAP_TYPE_RAM);
	check_map_entry(&map[1], 0xa0000, 0x60000, XEN_HVM_MEMMAP_TYPE_RESERVED);
	check_map_entry(&map[2], 0x100000, RAM - 0x100000, XEN_HVM_MEMMAP_TYPE_RAM);
	check_map_entry(&map[3], 0xfec00000, 0x1000, XEN_HVM_MEMMAP_TYPE_RESERVED);
	check_map_entry(&map[4], 0xfee00000, 0x1000, XEN_HVM_MEMMAP_TYPE_RESERVED);

	/* GDT: flat code 0x08, data 0x10, TSS 0x18, as loader.h documents. */
	assert_int_equal(guest_mem_read(&f->m, LAYOUT_GDT, gdt, sizeof(gdt)), 0);
	assert_true(gdt[0] == 0);
	assert_true(gdt[PVH_GDT_CS / 8] == 0x00cf9b000000ffffULL);
	assert_true(gdt[PVH_GDT_DS / 8] == 0x00cf93000000ffffULL);
	assert_true(gdt[PVH_GDT_TR / 8] == 0x00008b0000000067ULL);
	assert_memory_equal(gdt, pvh_gdt, sizeof(gdt));
	assert_int_equal(PVH_GDT_LIMIT, 31);

	/* The boot area was zeroed around the structures; the rest of RAM untouched. */
	assert_int_equal(*ram(f, LAYOUT_GDT + sizeof(gdt)), 0);
	assert_int_equal(*ram(f, LAYOUT_MODLIST), 0);
	assert_int_equal(*ram(f, LAYOUT_BOOT_END - 1), 0);
	assert_int_equal(*ram(f, LAYOUT_BOOT_START - 1), 0x5a);
	assert_int_equal(*ram(f, LAYOUT_BOOT_END), 0x5a);
	assert_int_equal(*ram(f, RAM - 1), 0x5a);
	/* The ACPI RSDP's address goes into start_info as given. */
	assert_int_equal(pvh_setup_start_info(&f->m, "", NULL, 0, 0x300000, 0xe0000, &gpa, &err),
			 0);
	assert_int_equal(guest_mem_read(&f->m, LAYOUT_START_INFO, &si, sizeof(si)), 0);
	assert_int_equal(si.rsdp_paddr, 0xe0000);
}

static void test_start_info_cmdline(void **state)
{
	struct fixture *f = *state;
	struct errbuf err = {{0}};
	uint64_t gpa;
	char *big = malloc(LAYOUT_CMDLINE_MAX + 1);
	char back[LAYOUT_CMDLINE_MAX];

	assert_non_null(big);
	/* NULL is the empty command line. */
	assert_int_equal(pvh_setup_start_info(&f->m, NULL, NULL, 0, 0, 0, &gpa, &err), 0);
	assert_int_equal(*ram(f, LAYOUT_CMDLINE), 0);
	assert_int_equal(pvh_setup_start_info(&f->m, "", NULL, 0, 0, 0, &gpa, &err), 0);
	assert_int_equal(*ram(f, LAYOUT_CMDLINE), 0);

	/* The longest that fits. */
	memset(big, 'c', LAYOUT_CMDLINE_MAX - 1);
	big[LAYOUT_CMDLINE_MAX - 1] = '\0';
	assert_int_equal(pvh_setup_start_info(&f->m, big, NULL, 0, 0, 0, &gpa, &err), 0);
	assert_int_equal(guest_mem_read(&f->m, LAYOUT_CMDLINE, back, sizeof(back)), 0);
	assert_memory_equal(back, big, LAYOUT_CMDLINE_MAX);

	/* One more byte is an error that names the limit. */
	memset(big, 'c', LAYOUT_CMDLINE_MAX);
	big[LAYOUT_CMDLINE_MAX] = '\0';
	assert_int_equal(pvh_setup_start_info(&f->m, big, NULL, 0, 0, 0, &gpa, &err), -E2BIG);
	assert_non_null(strstr(err.msg, "command line is longer than 4095 bytes"));
	free(big);
}

static void test_start_info_initrd(void **state)
{
	struct fixture *f = *state;
	struct errbuf err = {{0}};
	struct hvm_start_info si;
	struct hvm_memmap_table_entry map[LAYOUT_MEMMAP_MAX];
	struct hvm_modlist_entry mod;
	uint64_t gpa;
	size_t len = 5000;
	uint8_t *initrd = malloc(RAM);

	assert_non_null(initrd);
	for (size_t i = 0; i < RAM; i++)
		initrd[i] = (uint8_t)(i * 13 + 1);

	poison(&f->m);
	assert_int_equal(pvh_setup_start_info(&f->m, "x", initrd, len, 0x300000, 0, &gpa, &err), 0);
	read_start_info(&f->m, &si, map);
	assert_int_equal(si.nr_modules, 1);
	assert_int_equal(si.modlist_paddr, LAYOUT_MODLIST);
	assert_int_equal(guest_mem_read(&f->m, LAYOUT_MODLIST, &mod, sizeof(mod)), 0);
	/* Top of RAM, page aligned: (16 MiB - 5000) & ~0xfff. */
	assert_int_equal(mod.paddr, 0xffe000);
	assert_int_equal(mod.size, len);
	assert_int_equal(mod.cmdline_paddr, 0);
	assert_int_equal(mod.reserved, 0);
	assert_memory_equal(ram(f, mod.paddr), initrd, len);
	assert_int_equal(*ram(f, mod.paddr + len), 0x5a);

	/* Exactly fits above an aligned kernel end; one byte more does not. */
	assert_int_equal(
	    pvh_setup_start_info(&f->m, "", initrd, RAM - 0x300000, 0x300000, 0, &gpa, &err), 0);
	assert_int_equal(guest_mem_read(&f->m, LAYOUT_MODLIST, &mod, sizeof(mod)), 0);
	assert_int_equal(mod.paddr, 0x300000);
	assert_memory_equal(ram(f, 0x300000), initrd, RAM - 0x300000);

	assert_int_equal(
	    pvh_setup_start_info(&f->m, "", initrd, RAM - 0x300000 + 1, 0x300000, 0, &gpa, &err),
	    -E2BIG);
	assert_non_null(strstr(err.msg, "initrd of 13631489 bytes does not fit"));
	assert_null(strchr(err.msg, '\n'));

	/* Alignment: fits by length but the page-aligned start falls below an
	 * unaligned kernel end. */
	assert_int_equal(
	    pvh_setup_start_info(&f->m, "", initrd, RAM - 0x300001, 0x300000, 0, &gpa, &err), 0);
	assert_int_equal(
	    pvh_setup_start_info(&f->m, "", initrd, RAM - 0x300001, 0x300001, 0, &gpa, &err),
	    -E2BIG);

	/* kernel_end 0: the initrd still stays above 1 MiB. */
	assert_int_equal(pvh_setup_start_info(&f->m, "", initrd, RAM - MiB, 0, 0, &gpa, &err), 0);
	assert_int_equal(pvh_setup_start_info(&f->m, "", initrd, RAM - MiB + 1, 0, 0, &gpa, &err),
			 -E2BIG);
	/* Kernel end beyond RAM, huge lengths. */
	assert_int_equal(pvh_setup_start_info(&f->m, "", initrd, 1, RAM + 1, 0, &gpa, &err),
			 -E2BIG);
	assert_int_equal(pvh_setup_start_info(&f->m, "", initrd, SIZE_MAX, 0, 0, &gpa, &err),
			 -E2BIG);
	assert_int_equal(pvh_setup_start_info(&f->m, "", initrd, 1, UINT64_MAX, 0, &gpa, &err),
			 -E2BIG);
	/* No data. */
	assert_int_equal(pvh_setup_start_info(&f->m, "", NULL, 10, 0, 0, &gpa, &err), -EINVAL);
	free(initrd);
}

static void test_start_info_high_ram(void **state)
{
	struct guest_mem m;
	struct errbuf err = {{0}};
	struct hvm_start_info si;
	struct hvm_memmap_table_entry map[LAYOUT_MEMMAP_MAX];
	struct hvm_modlist_entry mod;
	uint64_t gpa;
	static const uint8_t initrd[4096 + 1] = {1, 2, 3};

	assert_int_equal(guest_mem_init(&m, 5 * GiB), 0);
	assert_int_equal(
	    pvh_setup_start_info(&m, "", initrd, sizeof(initrd), 0x200000, 0, &gpa, &err), 0);
	read_start_info(&m, &si, map);
	assert_int_equal(si.memmap_entries, 6);
	check_map_entry(&map[0], 0, 0xa0000, XEN_HVM_MEMMAP_TYPE_RAM);
	check_map_entry(&map[1], 0xa0000, 0x60000, XEN_HVM_MEMMAP_TYPE_RESERVED);
	check_map_entry(&map[2], 0x100000, LAYOUT_MMIO32_START - 0x100000, XEN_HVM_MEMMAP_TYPE_RAM);
	check_map_entry(&map[3], LAYOUT_IOAPIC, 0x1000, XEN_HVM_MEMMAP_TYPE_RESERVED);
	check_map_entry(&map[4], LAYOUT_LAPIC, 0x1000, XEN_HVM_MEMMAP_TYPE_RESERVED);
	check_map_entry(&map[5], LAYOUT_MMIO32_END, 5 * GiB - LAYOUT_MMIO32_START,
			XEN_HVM_MEMMAP_TYPE_RAM);
	/* Sorted and disjoint. */
	for (unsigned i = 1; i < si.memmap_entries; i++)
		assert_true(map[i - 1].addr + map[i - 1].size <= map[i].addr);
	/* The initrd sits below the PCI hole, not in high RAM. */
	assert_int_equal(guest_mem_read(&m, LAYOUT_MODLIST, &mod, sizeof(mod)), 0);
	assert_int_equal(mod.paddr, LAYOUT_MMIO32_START - 0x2000);
	assert_int_equal(*(uint8_t *)guest_mem_ptr(&m, mod.paddr + 2, 1), 3);
	guest_mem_free(&m);
}

static void test_load_then_start_info(void **state)
{
	struct fixture *f = *state;
	struct built b = build_default();
	struct pvh_image img;
	struct errbuf err;
	uint64_t gpa;
	static const uint8_t initrd[100] = {7};

	load_ok(&f->m, &b, &img);
	free(b.buf);
	assert_int_equal(pvh_setup_start_info(&f->m, "a b c", initrd, sizeof(initrd), img.load_high,
					      0, &gpa, &err),
			 0);
	/* The kernel's bytes survive. */
	assert_int_equal(*ram(f, 0x100000), data_byte(0, 0));
	assert_int_equal(*ram(f, 0xfff000), 7);
}

/* ---- fuzz ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	/* xorshift64*: deterministic, so a failure reproduces. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static void fuzz_one(struct guest_mem *m, const struct built *orig, unsigned iters)
{
	uint8_t *buf = malloc(orig->len);
	uint8_t boot[LAYOUT_BOOT_END - LAYOUT_BOOT_START];
	unsigned ok = 0;

	assert_non_null(buf);
	memset(boot, 0xb0, sizeof(boot));
	for (unsigned it = 0; it < iters; it++) {
		size_t len = orig->len;
		unsigned k = 1 + (unsigned)(rnd() % 4);
		struct errbuf err = {{0}};
		struct pvh_image img = {0};

		memcpy(buf, orig->buf, len);
		assert_int_equal(guest_mem_write(m, LAYOUT_BOOT_START, boot, sizeof(boot)), 0);
		for (unsigned j = 0; j < k; j++) {
			uint64_t r = rnd();
			size_t pos;

			switch (r % 4) {
			case 0:
			case 1: /* headers */
				pos = (size_t)(r >> 8) % (orig->phoff + 6 * 56);
				break;
			case 2: /* notes and section headers */
				pos = orig->notes_off + (size_t)(r >> 8) % (len - orig->notes_off);
				break;
			default:
				pos = (size_t)(r >> 8) % len;
			}
			switch ((r >> 40) % 5) {
			case 0:
				buf[pos] = (uint8_t)(r >> 48);
				break;
			case 1:
				buf[pos] ^= (uint8_t)(1u << ((r >> 48) % 8));
				break;
			case 2:
				buf[pos] = (r >> 48) & 1 ? 0xff : 0;
				break;
			default: /* a 32-bit word: sizes and offsets */
				if (pos + 4 <= len) {
					uint32_t v = (uint32_t)(r >> 32);

					if ((r >> 45) & 1)
						v = (uint32_t) - (int32_t)((r >> 50) % 64);
					memcpy(buf + pos, &v, 4);
				}
			}
		}
		if (rnd() % 10 == 0)
			len = (size_t)(rnd() % len);

		int r = pvh_load_elf(m, buf, len, &img, &err);

		if (r == 0) {
			ok++;
			assert_true(img.load_low < img.load_high);
			assert_true(img.entry >= img.load_low && img.entry < img.load_high);
		} else {
			assert_true(r == -ENOEXEC);
			assert_true(err.msg[0] != '\0');
			assert_null(strchr(err.msg, '\n'));
		}
		/* Never a write into the boot area, accepted or not. */
		assert_memory_equal(guest_mem_ptr(m, LAYOUT_BOOT_START, sizeof(boot)), boot,
				    sizeof(boot));
	}
	/* Some mutations are harmless (e.g. in segment data): the loop must have
	 * exercised the success path too, or it tests little. */
	assert_true(ok > iters / 50);
	free(buf);
}

static void test_fuzz(void **state)
{
	struct fixture *f = *state;
	struct elf_spec s = default_spec;
	struct built b;

	b = build_default();
	fuzz_one(&f->m, &b, 20000);
	free(b.buf);
	s.bits = 32;
	b = build_elf(&s);
	fuzz_one(&f->m, &b, 20000);
	free(b.buf);
	s = default_spec;
	s.pt_note = false;
	b = build_elf(&s);
	fuzz_one(&f->m, &b, 20000);
	free(b.buf);
}

/* A test that gets a fresh 16 MiB guest in *state. */
#define WITH_RAM(t) cmocka_unit_test_setup_teardown(t, setup, ram_fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    WITH_RAM(test_good_elf64),		 WITH_RAM(test_good_elf32),
	    WITH_RAM(test_good_variants),	 cmocka_unit_test(test_high_ram),
	    WITH_RAM(test_reject_truncated),	 WITH_RAM(test_reject_ehdr),
	    WITH_RAM(test_reject_segments),	 WITH_RAM(test_reject_elf32_segments),
	    WITH_RAM(test_reject_notes),	 WITH_RAM(test_reject_entry),
	    WITH_RAM(test_start_info_basic),	 WITH_RAM(test_start_info_cmdline),
	    WITH_RAM(test_start_info_initrd),	 cmocka_unit_test(test_start_info_high_ram),
	    WITH_RAM(test_load_then_start_info), WITH_RAM(test_fuzz),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
