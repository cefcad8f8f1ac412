/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for vmm/bzimage.c. A bzImage is synthesized by build_image():
 * a boot sector and setup code with a protocol 2.15 setup header, then a
 * patterned protected-mode kernel. Each rejection test changes one field
 * of a good image and checks the message names it, and that nothing was
 * written to guest RAM.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/bzimage.h"
#include "vmm/e820.h"
#include "vmm/layout.h"
#include "ram_fixture.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define RAM (256 * MiB)

#define SETUP_SECTS  3 /* setup code: 4 sectors */
#define SETUP_SIZE   ((SETUP_SECTS + 1) * 512)
#define KERNEL_BYTES 0x10000 /* syssize 0x1000 */
#define PREF	     0x1000000ULL
#define INIT_SIZE    0x400000U
#define HDR_END	     0x26c /* as protocol 2.15 kernels have it */

struct image {
	uint8_t *buf;
	size_t len;
};

static void put16(uint8_t *p, size_t off, uint16_t v)
{
	memcpy(p + off, &v, 2);
}

static void put32(uint8_t *p, size_t off, uint32_t v)
{
	memcpy(p + off, &v, 4);
}

static void put64(uint8_t *p, size_t off, uint64_t v)
{
	memcpy(p + off, &v, 8);
}

static uint16_t get16(const uint8_t *p, size_t off)
{
	uint16_t v;

	memcpy(&v, p + off, 2);
	return v;
}

static uint32_t get32(const uint8_t *p, size_t off)
{
	uint32_t v;

	memcpy(&v, p + off, 4);
	return v;
}

static uint64_t get64(const uint8_t *p, size_t off)
{
	uint64_t v;

	memcpy(&v, p + off, 8);
	return v;
}

static uint8_t kernel_byte(size_t i)
{
	return (uint8_t)(i * 13 + 7);
}

/* A good image: what Debian's 6.1 bzImage has, scaled down; @extra bytes
 * follow the kernel (a signature, say). */
static struct image build_image(size_t extra)
{
	struct image im;
	uint8_t *p;

	im.len = SETUP_SIZE + KERNEL_BYTES + extra;
	p = im.buf = calloc(1, im.len);
	assert_non_null(p);
	memcpy(p, "MZ", 2); /* an EFI stub's PE header, ignored */
	for (size_t i = BZ_HDR_START; i < HDR_END; i++)
		p[i] = (uint8_t)(0x40 + i); /* fields the loader copies as they are */
	p[BZ_SETUP_SECTS] = SETUP_SECTS;
	put16(p, BZ_BOOT_FLAG, BZ_BOOT_FLAG_MAGIC);
	p[BZ_JUMP] = 0xeb;
	p[BZ_JUMP + 1] = HDR_END - 0x202;
	memcpy(p + BZ_HEADER, "HdrS", 4);
	put16(p, BZ_VERSION, 0x020f);
	put32(p, BZ_SYSSIZE, KERNEL_BYTES / 16);
	p[BZ_TYPE_OF_LOADER] = 0;
	p[BZ_LOADFLAGS] = BZ_LOADED_HIGH;
	put32(p, BZ_RAMDISK_IMAGE, 0);
	put32(p, BZ_RAMDISK_SIZE, 0);
	put16(p, BZ_HEAP_END_PTR, 0);
	put32(p, BZ_CMD_LINE_PTR, 0);
	put32(p, BZ_INITRD_ADDR_MAX, 0x7fffffff);
	put32(p, BZ_KERNEL_ALIGNMENT, 0x200000);
	p[BZ_RELOCATABLE_KERNEL] = 1;
	p[BZ_MIN_ALIGNMENT] = 21;
	put16(p, BZ_XLOADFLAGS, 0x7f);
	put32(p, BZ_CMDLINE_SIZE, 2047);
	put64(p, BZ_SETUP_DATA, 0);
	put64(p, BZ_PREF_ADDRESS, PREF);
	put32(p, BZ_INIT_SIZE, INIT_SIZE);
	for (size_t i = 0; i < KERNEL_BYTES; i++)
		p[SETUP_SIZE + i] = kernel_byte(i);
	for (size_t i = 0; i < extra; i++)
		p[SETUP_SIZE + KERNEL_BYTES + i] = 0xee;
	return im;
}

static int setup(void **state)
{
	return ram_fixture_setup(state, RAM);
}

static int setup_small(void **state)
{
	return ram_fixture_setup(state, 32 * MiB);
}

/* Fill the boot area and the kernel's first pages with 0x5a: what a reboot
 * leaves behind, and a witness that failures write nothing. */
static void poison(struct fixture *f)
{
	memset(ram(f, 0), 0x5a, LAYOUT_LINUX_END + 0x1000);
	memset(ram(f, PREF), 0x5a, 0x20000);
	memset(ram(f, RAM - 0x100000), 0x5a, 0x100000);
}

static void check_untouched(struct fixture *f)
{
	static const uint64_t where[] = {LAYOUT_LINUX_GDT,
					 LAYOUT_ZERO_PAGE + BZ_HDR_START,
					 LAYOUT_LINUX_PML4,
					 LAYOUT_LINUX_CMDLINE,
					 PREF,
					 RAM - 0x1000};

	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++)
		if (*ram(f, where[i]) != 0x5a)
			fail_msg("a failed load wrote guest RAM at %#llx",
				 (unsigned long long)where[i]);
}

static const struct bzimage_args no_args = {0};

static void load_ok(struct fixture *f, const struct image *im, const struct bzimage_args *a,
		    struct bzimage_boot *b)
{
	struct errbuf err = {{0}};
	int r = bzimage_load(&f->m, im->buf, im->len, a, b, &err);

	if (r)
		fail_msg("bzimage_load failed (%d): %s", r, err.msg);
}

/* The image must be refused with @errnum and a message containing @what. */
static void expect_fail(struct fixture *f, const struct image *im, const struct bzimage_args *a,
			int errnum, const char *what)
{
	struct errbuf err = {{0}};
	struct bzimage_boot b = {0};
	int r;

	poison(f);
	r = bzimage_load(&f->m, im->buf, im->len, a, &b, &err);
	check_refusal(r, err.msg, errnum, what);
	check_untouched(f);
}

/* Walk the loader's page tables: the GPA @va maps to, or ~0 if unmapped. */
static uint64_t translate(struct fixture *f, uint64_t va)
{
	uint64_t pml4e, pdpte, pde;

	assert_int_equal(
	    guest_mem_read(&f->m, LAYOUT_LINUX_PML4 + ((va >> 39) & 511) * 8, &pml4e, 8), 0);
	if (!(pml4e & 1))
		return ~0ULL;
	assert_int_equal(
	    guest_mem_read(&f->m, (pml4e & ~0xfffULL) + ((va >> 30) & 511) * 8, &pdpte, 8), 0);
	if (!(pdpte & 1))
		return ~0ULL;
	assert_false(pdpte & 0x80); /* no 1 GiB pages: the PVM host lacks them */
	assert_int_equal(
	    guest_mem_read(&f->m, (pdpte & ~0xfffULL) + ((va >> 21) & 511) * 8, &pde, 8), 0);
	if (!(pde & 1))
		return ~0ULL;
	assert_true(pde & 0x80); /* 2 MiB page */
	assert_true(pde & 0x02); /* writable */
	return (pde & ~0x1fffffULL & ((1ULL << 52) - 1)) + (va & 0x1fffff);
}

static void check_e820(const uint8_t *zp, const struct guest_mem *m)
{
	struct e820_entry want[E820_MAX_ENTRIES];
	unsigned n = e820_build(m, want);

	assert_int_equal(zp[BZ_E820_ENTRIES], n);
	for (unsigned i = 0; i < n; i++) {
		size_t off = BZ_E820_TABLE + i * 20;

		assert_int_equal(get64(zp, off), want[i].addr);
		assert_int_equal(get64(zp, off + 8), want[i].size);
		assert_int_equal(get32(zp, off + 16), want[i].type);
	}
	/* Nothing after the last entry. */
	for (size_t i = BZ_E820_TABLE + n * 20; i < BZ_E820_TABLE + BZ_E820_MAX * 20; i++)
		assert_int_equal(zp[i], 0);
}

static void test_good(void **state)
{
	struct fixture *f = *state;
	struct image im = build_image(100);
	static const char initrd[] = "initrd contents";
	struct bzimage_args a = {
	    .cmdline = "console=ttyS0 panic=-1",
	    .initrd = initrd,
	    .initrd_len = sizeof(initrd),
	    .rsdp = 0xe0000,
	};
	struct bzimage_boot b;
	uint8_t zp[BZ_ZERO_PAGE_SIZE];
	uint64_t gdt[BZ_GDT_ENTRIES];
	char cmd[64];
	uint64_t initrd_gpa = (RAM - sizeof(initrd)) & ~0xfffULL;

	poison(f);
	load_ok(f, &im, &a, &b);
	assert_int_equal(b.load_addr, PREF);
	assert_int_equal(b.load_end, PREF + INIT_SIZE);
	assert_int_equal(b.entry, PREF + 0x200);
	assert_int_equal(b.boot_params, LAYOUT_ZERO_PAGE);
	assert_int_equal(b.cr3, LAYOUT_LINUX_PML4);
	assert_int_equal(b.version, 0x020f);
	assert_int_equal(b.initrd_addr, initrd_gpa);

	/* The protected-mode kernel, and not a byte of what follows it. */
	assert_memory_equal(ram(f, PREF), im.buf + SETUP_SIZE, KERNEL_BYTES);
	assert_int_equal(*ram(f, PREF + KERNEL_BYTES), 0x5a);

	/* The zero page: zeroed, the header copied, our fields set. */
	assert_int_equal(guest_mem_read(&f->m, LAYOUT_ZERO_PAGE, zp, sizeof(zp)), 0);
	for (size_t i = 0; i < BZ_E820_ENTRIES; i++)
		if (i < BZ_ACPI_RSDP_ADDR || i >= BZ_ACPI_RSDP_ADDR + 8)
			assert_int_equal(zp[i], 0);
	assert_int_equal(get64(zp, BZ_ACPI_RSDP_ADDR), 0xe0000);
	assert_int_equal(zp[BZ_SENTINEL], 0);
	for (size_t i = BZ_HDR_START; i < HDR_END; i++) {
		bool ours = (i >= BZ_TYPE_OF_LOADER && i <= BZ_LOADFLAGS) ||
			    (i >= BZ_RAMDISK_IMAGE && i < BZ_RAMDISK_SIZE + 4) ||
			    (i >= BZ_HEAP_END_PTR && i < BZ_HEAP_END_PTR + 2) ||
			    (i >= BZ_CMD_LINE_PTR && i < BZ_CMD_LINE_PTR + 4) ||
			    (i >= BZ_SETUP_DATA && i < BZ_SETUP_DATA + 8);

		if (!ours && zp[i] != im.buf[i])
			fail_msg("zero page byte %#zx is %#x, the file has %#x", i, zp[i],
				 im.buf[i]);
	}
	for (size_t i = HDR_END; i < BZ_E820_TABLE; i++)
		assert_int_equal(zp[i], 0); /* past the header: not copied */
	assert_int_equal(zp[BZ_TYPE_OF_LOADER], 0xff);
	assert_int_equal(zp[BZ_LOADFLAGS], BZ_LOADED_HIGH | BZ_CAN_USE_HEAP);
	assert_int_equal(get16(zp, BZ_HEAP_END_PTR), 0xde00);
	assert_int_equal(get32(zp, BZ_CMD_LINE_PTR), LAYOUT_LINUX_CMDLINE);
	assert_int_equal(get32(zp, BZ_RAMDISK_IMAGE), initrd_gpa);
	assert_int_equal(get32(zp, BZ_RAMDISK_SIZE), sizeof(initrd));
	assert_int_equal(get64(zp, BZ_SETUP_DATA), 0);
	check_e820(zp, &f->m);
	/* The same map as PVH's, spelled out. */
	assert_int_equal(zp[BZ_E820_ENTRIES], 5);
	assert_int_equal(get64(zp, BZ_E820_TABLE + 2 * 20), 0x100000);
	assert_int_equal(get64(zp, BZ_E820_TABLE + 2 * 20 + 8), RAM - 0x100000);
	assert_int_equal(get32(zp, BZ_E820_TABLE + 1 * 20 + 16), E820_TYPE_RESERVED);

	/* Command line, NUL-terminated. */
	assert_int_equal(guest_mem_read(&f->m, LAYOUT_LINUX_CMDLINE, cmd, sizeof(cmd)), 0);
	assert_string_equal(cmd, "console=ttyS0 panic=-1");

	/* initrd: page aligned, as high as RAM allows, above the kernel. */
	assert_int_equal(initrd_gpa & 0xfff, 0);
	assert_true(initrd_gpa >= b.load_end);
	assert_memory_equal(ram(f, initrd_gpa), initrd, sizeof(initrd));

	/* GDT: 64-bit __BOOT_CS 0x10, __BOOT_DS 0x18, busy TSS 0x20. */
	assert_int_equal(guest_mem_read(&f->m, LAYOUT_LINUX_GDT, gdt, sizeof(gdt)), 0);
	assert_memory_equal(gdt, bzimage_gdt, sizeof(gdt));
	assert_true(gdt[0] == 0 && gdt[1] == 0);
	assert_true(gdt[2] == 0x00af9b000000ffffULL); /* L=1, D=0 */
	assert_true(gdt[3] == 0x00cf93000000ffffULL);
	assert_true(gdt[4] == 0x00008b0000000067ULL && gdt[5] == 0);
	assert_int_equal(BZ_GDT_CS, 0x10);
	assert_int_equal(BZ_GDT_DS, 0x18);

	/* Page tables: identity map of [0, 4 GiB) with 2 MiB pages. */
	static const uint64_t va[] = {0,
				      LAYOUT_ZERO_PAGE,
				      LAYOUT_LINUX_CMDLINE + 5,
				      PREF + 0x200,
				      PREF + INIT_SIZE - 1,
				      RAM - 1,
				      0xfee00000,
				      4 * GiB - 1};

	for (size_t i = 0; i < sizeof(va) / sizeof(va[0]); i++)
		assert_int_equal(translate(f, va[i]), va[i]);
	assert_int_equal(translate(f, 4 * GiB), ~0ULL);
	uint64_t pde;

	assert_int_equal(guest_mem_read(&f->m, LAYOUT_LINUX_PD + 0x7ff * 8, &pde, 8), 0);
	assert_true(pde == (0xffe00000ULL | 0x9b)); /* MMIO: PCD | PWT */
	assert_int_equal(guest_mem_read(&f->m, LAYOUT_LINUX_PD + 8, &pde, 8), 0);
	assert_true(pde == (0x200000ULL | 0x83));
	/* The boot area was cleared between the structures. */
	assert_int_equal(*ram(f, LAYOUT_LINUX_CMDLINE + 100), 0);
	assert_int_equal(*ram(f, LAYOUT_LINUX_END - 1), 0);
	assert_int_equal(*ram(f, LAYOUT_LINUX_END), 0x5a);
	/* PVH's boot area is left alone. */
	assert_int_equal(*ram(f, LAYOUT_BOOT_START), 0x5a);
	free(im.buf);
}

static void test_no_initrd_no_cmdline(void **state)
{
	struct fixture *f = *state;
	struct image im = build_image(0);
	struct bzimage_boot b;
	uint8_t zp[BZ_ZERO_PAGE_SIZE];

	poison(f);
	load_ok(f, &im, &no_args, &b);
	assert_int_equal(b.initrd_addr, 0);
	assert_int_equal(guest_mem_read(&f->m, LAYOUT_ZERO_PAGE, zp, sizeof(zp)), 0);
	assert_int_equal(get32(zp, BZ_RAMDISK_IMAGE), 0);
	assert_int_equal(get32(zp, BZ_RAMDISK_SIZE), 0);
	assert_int_equal(get64(zp, BZ_ACPI_RSDP_ADDR), 0);
	assert_int_equal(*ram(f, LAYOUT_LINUX_CMDLINE), 0);
	assert_int_equal(*ram(f, RAM - 1), 0x5a);
	free(im.buf);
}

/* initrd_addr_max below the end of RAM caps the initrd's end. */
static void test_initrd_addr_max(void **state)
{
	struct fixture *f = *state;
	struct image im = build_image(0);
	static uint8_t initrd[0x3000];
	struct bzimage_args a = {.initrd = initrd, .initrd_len = 0x2345};
	struct bzimage_boot b;

	put32(im.buf, BZ_INITRD_ADDR_MAX, 0x3ffffff); /* 64 MiB */
	load_ok(f, &im, &a, &b);
	assert_int_equal(b.initrd_addr, (0x4000000 - 0x2345) & ~0xfffULL);
	/* Exactly at the kernel's end: still fits. */
	put32(im.buf, BZ_INITRD_ADDR_MAX, PREF + INIT_SIZE + 0x3000 - 1);
	a.initrd_len = 0x3000;
	load_ok(f, &im, &a, &b);
	assert_int_equal(b.initrd_addr, PREF + INIT_SIZE);
	/* One byte more does not. */
	a.initrd_len = 0x3001;
	expect_fail(f, &im, &a, E2BIG, "initrd_addr_max");
	/* An initrd larger than what is left of RAM. */
	put32(im.buf, BZ_INITRD_ADDR_MAX, 0x7fffffff);
	a.initrd_len = RAM;
	expect_fail(f, &im, &a, E2BIG, "initrd of 268435456 bytes does not fit");
	a.initrd = NULL;
	a.initrd_len = 10;
	expect_fail(f, &im, &a, EINVAL, "no data");
	free(im.buf);
}

/* pref_address beyond RAM: a relocatable kernel moves to an aligned
 * address from 1 MiB; a fixed one is refused. */
static void test_relocate(void **state)
{
	struct fixture *f = *state; /* 32 MiB of RAM */
	struct image im = build_image(0);
	struct bzimage_boot b;
	struct errbuf err = {{0}};

	put32(im.buf, BZ_INIT_SIZE, 20 * MiB); /* 16 MiB + 20 MiB > 32 MiB */
	load_ok(f, &im, &no_args, &b);
	assert_int_equal(b.load_addr, 0x200000);
	assert_int_equal(b.entry, 0x200200);
	assert_memory_equal(ram(f, 0x200000), im.buf + SETUP_SIZE, KERNEL_BYTES);

	put32(im.buf, BZ_KERNEL_ALIGNMENT, 0x1000000); /* 16 MiB alignment: 16 MiB again */
	assert_int_equal(bzimage_load(&f->m, im.buf, im.len, &no_args, &b, &err), -ENOEXEC);
	assert_non_null(strstr(err.msg, "0x1000000-aligned"));
	assert_non_null(strstr(err.msg, "--memory"));

	put32(im.buf, BZ_KERNEL_ALIGNMENT, 0x200000);
	im.buf[BZ_RELOCATABLE_KERNEL] = 0;
	assert_int_equal(bzimage_load(&f->m, im.buf, im.len, &no_args, &b, &err), -ENOEXEC);
	assert_non_null(strstr(err.msg, "not relocatable"));
	assert_non_null(strstr(err.msg, "pref_address 0x1000000"));

	/* A fixed kernel whose pref_address fits loads there. */
	put32(im.buf, BZ_INIT_SIZE, 8 * MiB);
	load_ok(f, &im, &no_args, &b);
	assert_int_equal(b.load_addr, PREF);
	/* pref_address below 1 MiB is not taken even when RAM is there. */
	put64(im.buf, BZ_PREF_ADDRESS, 0x10000);
	assert_int_equal(bzimage_load(&f->m, im.buf, im.len, &no_args, &b, &err), -ENOEXEC);
	im.buf[BZ_RELOCATABLE_KERNEL] = 1;
	load_ok(f, &im, &no_args, &b);
	assert_int_equal(b.load_addr, 0x200000);
	free(im.buf);
}

static void test_reject_magic(void **state)
{
	struct fixture *f = *state;
	struct image im = build_image(0);
	struct bzimage_boot b;
	struct errbuf err = {{0}};

	assert_true(bzimage_probe(im.buf, im.len));
	assert_false(bzimage_probe(im.buf, BZ_HEADER + 3));
	assert_false(bzimage_probe(NULL, 0));
	put16(im.buf, BZ_BOOT_FLAG, 0xaa56);
	assert_false(bzimage_probe(im.buf, im.len));
	expect_fail(f, &im, &no_args, ENOEXEC, "not a bzImage");
	put16(im.buf, BZ_BOOT_FLAG, BZ_BOOT_FLAG_MAGIC);
	im.buf[BZ_HEADER + 3] = 's';
	assert_false(bzimage_probe(im.buf, im.len));
	expect_fail(f, &im, &no_args, ENOEXEC, "HdrS");
	assert_int_equal(bzimage_load(&f->m, NULL, 0, &no_args, &b, &err), -ENOEXEC);
	free(im.buf);
}

/* Each field of the header, made wrong on its own. */
static void test_reject_fields(void **state)
{
	struct fixture *f = *state;
	static const struct {
		size_t off;
		int size; /* 1, 2, 4 or 8 */
		uint64_t value;
		int errnum;
		const char *what;
	} cases[] = {
	    {BZ_VERSION, 2, 0x020b, ENOEXEC, "boot protocol 2.11 is older than 2.12"},
	    {BZ_VERSION, 2, 0x0204, ENOEXEC, "64-bit entry"},
	    {BZ_JUMP, 1, 0xe9, ENOEXEC, "not the short jmp"},
	    {BZ_JUMP + 1, 1, 0x265 - 0x202, ENOEXEC, "setup header ends at 0x265"},
	    {BZ_JUMP + 1, 1, 0x291 - 0x202, ENOEXEC, "setup header ends at 0x291"},
	    {BZ_SETUP_SECTS, 1, 0xff, ENOEXEC, "setup_sects 255"},
	    {BZ_LOADFLAGS, 1, 0x80, ENOEXEC, "LOADED_HIGH"},
	    {BZ_XLOADFLAGS, 2, 0x7e, ENOEXEC, "XLF_KERNEL_64"},
	    {BZ_SYSSIZE, 4, 0, ENOEXEC, "syssize is 0"},
	    {BZ_SYSSIZE, 4, KERNEL_BYTES / 16 + 1, ENOEXEC, "syssize 0x1001"},
	    {BZ_SYSSIZE, 4, 0xffffffff, ENOEXEC, "runs past the end of the file"},
	    {BZ_KERNEL_ALIGNMENT, 4, 0, ENOEXEC, "kernel_alignment 0 is not a power of two"},
	    {BZ_KERNEL_ALIGNMENT, 4, 0x300000, ENOEXEC, "kernel_alignment 0x300000"},
	    {BZ_MIN_ALIGNMENT, 1, 22, ENOEXEC, "min_alignment 2^22"},
	    {BZ_MIN_ALIGNMENT, 1, 200, ENOEXEC, "min_alignment 2^200"},
	    {BZ_INIT_SIZE, 4, KERNEL_BYTES - 1, ENOEXEC, "init_size 0xffff is smaller"},
	    {BZ_INIT_SIZE, 4, 0xf0000000, ENOEXEC, "init_size 0xf0000000"},
	    {BZ_CMDLINE_SIZE, 4, 5, E2BIG, "at most 5 (its cmdline_size)"},
	};
	struct bzimage_args a = {.cmdline = "console=ttyS0"};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct image im = build_image(0);

		memcpy(im.buf + cases[i].off, &cases[i].value, cases[i].size);
		expect_fail(f, &im, &a, cases[i].errnum, cases[i].what);
		free(im.buf);
	}
}

static void test_reject_truncated(void **state)
{
	struct fixture *f = *state;
	struct image im = build_image(0);

	im.len = BZ_VERSION + 1; /* magic present, version cut */
	expect_fail(f, &im, &no_args, ENOEXEC, "truncated");
	im.len = BZ_HDR_MIN_END - 1;
	expect_fail(f, &im, &no_args, ENOEXEC, "truncated: 615 bytes");
	im.len = SETUP_SIZE - 1;
	expect_fail(f, &im, &no_args, ENOEXEC, "shorter than its setup code");
	im.len = SETUP_SIZE + KERNEL_BYTES - 1;
	expect_fail(f, &im, &no_args, ENOEXEC, "runs past the end of the file");
	/* setup_sects 0 means 4: the kernel then starts at 2560. */
	im.len = SETUP_SIZE + KERNEL_BYTES;
	im.buf[BZ_SETUP_SECTS] = 0;
	expect_fail(f, &im, &no_args, ENOEXEC, "after 2560 of setup");
	free(im.buf);
}

static void test_setup_sects_zero(void **state)
{
	struct fixture *f = *state;
	struct image im = build_image(512);
	struct bzimage_boot b;

	im.buf[BZ_SETUP_SECTS] = 0; /* 4 sectors: the kernel starts 512 bytes later */
	load_ok(f, &im, &no_args, &b);
	assert_memory_equal(ram(f, PREF), im.buf + 5 * 512, KERNEL_BYTES);
	free(im.buf);
}

static void test_cmdline_limits(void **state)
{
	struct fixture *f = *state;
	struct image im = build_image(0);
	struct bzimage_boot b;
	char *big = malloc(LAYOUT_LINUX_CMDLINE_MAX + 1);
	struct bzimage_args a = {.cmdline = big};

	assert_non_null(big);
	memset(big, 'x', LAYOUT_LINUX_CMDLINE_MAX);
	big[2047] = 0; /* exactly cmdline_size */
	load_ok(f, &im, &a, &b);
	assert_int_equal(*ram(f, LAYOUT_LINUX_CMDLINE + 2046), 'x');
	assert_int_equal(*ram(f, LAYOUT_LINUX_CMDLINE + 2047), 0);
	big[2047] = 'x';
	big[2048] = 0;
	expect_fail(f, &im, &a, E2BIG, "2048 bytes, the kernel takes at most 2047");
	put32(im.buf, BZ_CMDLINE_SIZE, 0xffffffff);
	big[2048] = 'x';
	big[LAYOUT_LINUX_CMDLINE_MAX - 1] = 0; /* the buffer's limit */
	load_ok(f, &im, &a, &b);
	assert_int_equal(*ram(f, LAYOUT_LINUX_CMDLINE + LAYOUT_LINUX_CMDLINE_MAX - 2), 'x');
	big[LAYOUT_LINUX_CMDLINE_MAX - 1] = 'x';
	big[LAYOUT_LINUX_CMDLINE_MAX] = 0;
	expect_fail(f, &im, &a, E2BIG, "longer than 65535 bytes");
	free(big);
	free(im.buf);
}

/* RAM above 4 GiB appears in the e820 table as PVH's map has it. */
static void test_high_ram(void **state)
{
	struct fixture f;
	struct image im = build_image(0);
	struct bzimage_boot b;
	uint8_t zp[BZ_ZERO_PAGE_SIZE];
	static uint8_t initrd[0x1000];
	struct bzimage_args a = {.initrd = initrd, .initrd_len = sizeof(initrd)};

	(void)state;
	assert_int_equal(guest_mem_init(&f.m, 5 * GiB), 0);
	load_ok(&f, &im, &a, &b);
	assert_int_equal(guest_mem_read(&f.m, LAYOUT_ZERO_PAGE, zp, sizeof(zp)), 0);
	check_e820(zp, &f.m);
	assert_int_equal(zp[BZ_E820_ENTRIES], 6);
	assert_int_equal(get64(zp, BZ_E820_TABLE + 5 * 20), 4 * GiB);
	assert_int_equal(get64(zp, BZ_E820_TABLE + 5 * 20 + 8), 2 * GiB);
	/* initrd below the PCI hole (and initrd_addr_max 2 GiB - 1). */
	assert_int_equal(b.initrd_addr, 0x80000000 - 0x1000);
	guest_mem_free(&f.m);
	free(im.buf);
}

/* Deterministic fuzz: random bytes in the header never crash or read
 * outside the image (ASan watches). */
static void test_fuzz(void **state)
{
	struct fixture *f = *state;
	uint32_t seed = 12345;

	for (int iter = 0; iter < 3000; iter++) {
		struct image im = build_image(0);
		struct bzimage_boot b;
		struct errbuf err = {{0}};
		int n = 1 + iter % 4;

		for (int k = 0; k < n; k++) {
			seed = seed * 1103515245 + 12345;
			size_t off = BZ_HDR_START + (seed >> 8) % (HDR_END - BZ_HDR_START);

			seed = seed * 1103515245 + 12345;
			im.buf[off] = (uint8_t)(seed >> 16);
		}
		seed = seed * 1103515245 + 12345;
		if (iter % 3 == 0)
			im.len = (seed >> 4) % im.len;
		int r = bzimage_load(&f->m, im.buf, im.len, &no_args, &b, &err);

		assert_true(r == 0 || r == -ENOEXEC || r == -E2BIG || r == -EINVAL);
		if (r == 0)
			assert_true(b.load_end <= RAM && b.load_addr >= 0x100000);
		free(im.buf);
	}
}

#define WITH_RAM(t)	  cmocka_unit_test_setup_teardown(t, setup, ram_fixture_teardown)
#define WITH_SMALL_RAM(t) cmocka_unit_test_setup_teardown(t, setup_small, ram_fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    WITH_RAM(test_good),
	    WITH_RAM(test_no_initrd_no_cmdline),
	    WITH_RAM(test_initrd_addr_max),
	    WITH_SMALL_RAM(test_relocate),
	    WITH_RAM(test_reject_magic),
	    WITH_RAM(test_reject_fields),
	    WITH_RAM(test_reject_truncated),
	    WITH_RAM(test_setup_sects_zero),
	    WITH_RAM(test_cmdline_limits),
	    cmocka_unit_test(test_high_ram),
	    WITH_RAM(test_fuzz),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
