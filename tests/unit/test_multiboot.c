/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for vmm/multiboot.c. Images come from tests/unit/mb_image.h
 * (ELF32, ELF64 linked high, and the address-fields "a.out kludge"). Each
 * refusal changes one thing in a good image and checks the message names
 * it, and that nothing was written to guest RAM.
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

#include "vmm/e820.h"
#include "vmm/layout.h"
#include "vmm/multiboot.h"
#include "vmm/pvh.h"
#include "mb_image.h"
#include "ram_fixture.h"

#define MiB (1ULL << 20)
#define RAM (64 * MiB)

static const char initrd_data[] = "NR_CPUS=1\nMEMSIZE=64\n";
static const struct multiboot_args args = {
    .kernel_path = "/k/x86/msr.flat",
    .cmdline = "-smp 1 test=a",
    .initrd_path = "/tmp/env",
    .initrd = initrd_data,
    .initrd_len = sizeof(initrd_data) - 1,
};

static uint32_t get32(struct fixture *f, uint64_t gpa)
{
	uint32_t v;

	assert_int_equal(guest_mem_read(&f->m, gpa, &v, 4), 0);
	return v;
}

static uint64_t get64(struct fixture *f, uint64_t gpa)
{
	uint64_t v;

	assert_int_equal(guest_mem_read(&f->m, gpa, &v, 8), 0);
	return v;
}

static int setup(void **state)
{
	return ram_fixture_setup(state, RAM);
}

/* 0x5a over low memory and the image: a witness that failures write nothing. */
static void poison(struct fixture *f)
{
	memset(ram(f, 0), 0x5a, LAYOUT_MB_END);
	memset(ram(f, MBI_LOAD), 0x5a, 0x100000);
}

static void check_untouched(struct fixture *f)
{
	static const uint64_t where[] = {LAYOUT_GDT + 8, LAYOUT_MB_INFO,   LAYOUT_MB_CMDLINE,
					 LAYOUT_MB_MMAP, MBI_LOAD + 0x100, MBI_LOAD + MBI_MEMSZ};

	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++)
		if (*ram(f, where[i]) != 0x5a)
			fail_msg("a failed load wrote guest RAM at %#llx",
				 (unsigned long long)where[i]);
}

static void load_ok(struct fixture *f, const struct mbi *im, const struct multiboot_args *a,
		    struct multiboot_boot *b)
{
	struct errbuf err = {{0}};
	int r = multiboot_load(&f->m, im->buf, im->len, a, b, &err);

	if (r)
		fail_msg("multiboot_load failed (%d): %s", r, err.msg);
}

/* @im must be refused with @errnum and a one-line message containing @what. */
static void expect_fail(struct fixture *f, const struct mbi *im, const struct multiboot_args *a,
			int errnum, const char *what)
{
	struct errbuf err = {{0}};
	struct multiboot_boot b = {0};
	int r;

	poison(f);
	r = multiboot_load(&f->m, im->buf, im->len, a, &b, &err);
	check_refusal(r, err.msg, errnum, what);
	check_untouched(f);
}

/* The loaded image, its bss and the information structure, for @a. */
static void check_boot(struct fixture *f, enum mbi_kind kind, const struct multiboot_boot *b,
		       const struct multiboot_args *a)
{
	struct e820_entry e820[E820_MAX_ENTRIES];
	unsigned n = e820_build(&f->m, e820);
	uint64_t info = b->info, mod = LAYOUT_MB_MODS;
	char want[128];

	assert_int_equal(b->entry, MBI_ENTRY);
	assert_int_equal(b->info, LAYOUT_MB_INFO);
	assert_int_equal(b->load_low, MBI_LOAD);
	assert_int_equal(b->load_high, MBI_LOAD + MBI_MEMSZ);
	for (size_t i = 0; i < MBI_FILESZ; i++)
		if (!mbi_in_header(kind, i) && *ram(f, MBI_LOAD + i) != mbi_byte(i))
			fail_msg("image byte %#zx not loaded", i);
	for (size_t i = MBI_FILESZ; i < MBI_MEMSZ; i++)
		if (*ram(f, MBI_LOAD + i))
			fail_msg("bss byte %#zx not zeroed", i);
	assert_memory_equal(ram(f, LAYOUT_GDT), pvh_gdt, sizeof(pvh_gdt));

	assert_int_equal(get32(f, info + MB_INFO_FLAGS),
			 (1u << 0) | (1u << 2) | (1u << 3) | (1u << 6) | (1u << 9));
	assert_int_equal(get32(f, info + MB_INFO_MEM_LOWER), 640);
	assert_int_equal(get32(f, info + MB_INFO_MEM_UPPER), (RAM - MiB) / 1024);
	snprintf(want, sizeof(want), "%s %s", a->kernel_path, a->cmdline ? a->cmdline : "");
	assert_string_equal((char *)ram(f, get32(f, info + MB_INFO_CMDLINE)), want);
	assert_string_equal((char *)ram(f, get32(f, info + MB_INFO_LOADER_NAME)), "kvmini");
	assert_int_equal(get32(f, info + MB_INFO_MODS_ADDR), mod);
	if (a->initrd_len) {
		uint32_t start = get32(f, mod + MB_MOD_START);

		assert_int_equal(get32(f, info + MB_INFO_MODS_COUNT), 1);
		/* The first page above the image. */
		assert_int_equal(start, ALIGN_UP(MBI_LOAD + MBI_MEMSZ, 4096));
		assert_int_equal(b->initrd_addr, start);
		assert_int_equal(get32(f, mod + MB_MOD_END), start + a->initrd_len);
		assert_memory_equal(ram(f, start), a->initrd, a->initrd_len);
		assert_string_equal((char *)ram(f, get32(f, mod + MB_MOD_STRING)), a->initrd_path);
	} else {
		assert_int_equal(get32(f, info + MB_INFO_MODS_COUNT), 0);
		assert_int_equal(b->initrd_addr, 0);
	}
	/* The memory map: e820_build's, each entry with size 20 before it. */
	assert_int_equal(get32(f, info + MB_INFO_MMAP_LENGTH), n * 24);
	uint64_t e = get32(f, info + MB_INFO_MMAP_ADDR);

	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(get32(f, e), 20);
		assert_int_equal(get64(f, e + 4), e820[i].addr);
		assert_int_equal(get64(f, e + 12), e820[i].size);
		assert_int_equal(get32(f, e + 20), e820[i].type);
		e += get32(f, e) + 4;
	}
	assert_int_equal(n, 5);
	assert_int_equal(e820[2].addr, MiB);
	assert_int_equal(e820[2].size, RAM - MiB);
}

static void load_and_check(struct fixture *f, enum mbi_kind kind, const struct multiboot_args *a)
{
	struct mbi im = mbi_build(kind);
	struct multiboot_boot b;

	assert_non_null(im.buf);
	poison(f);
	load_ok(f, &im, a, &b);
	assert_int_equal(b.header_offset, im.hdr);
	check_boot(f, kind, &b, a);
	free(im.buf);
}

static void test_elf32(void **state)
{
	load_and_check(*state, MBI_ELF32, &args);
}

static void test_elf64(void **state)
{
	load_and_check(*state, MBI_ELF64, &args);
}

static void test_aout(void **state)
{
	load_and_check(*state, MBI_AOUT, &args);
}

static void test_no_initrd_no_cmdline(void **state)
{
	struct multiboot_args a = {.kernel_path = "k"};

	load_and_check(*state, MBI_ELF32, &a);
	load_and_check(*state, MBI_AOUT, &a);
	assert_string_equal((char *)ram(*state, LAYOUT_MB_CMDLINE), "k ");
}

static void test_probe(void **state)
{
	uint8_t buf[MB_SEARCH + 64] = {0};
	struct mbi im = mbi_build(MBI_ELF32);

	(void)state;
	assert_int_equal(multiboot_probe(NULL, 0), MB_PROBE_NONE);
	assert_int_equal(multiboot_probe(buf, sizeof(buf)), MB_PROBE_NONE);
	assert_int_equal(multiboot_probe(im.buf, im.len), MB_PROBE_OK);
	/* Cut inside the header: no room for the checksum. */
	assert_int_equal(multiboot_probe(im.buf, im.hdr + 8), MB_PROBE_NONE);
	im.buf[im.hdr + MB_HDR_CHECKSUM] ^= 1;
	assert_int_equal(multiboot_probe(im.buf, im.len), MB_PROBE_BAD_CHECKSUM);
	free(im.buf);

	/* Only 4-byte aligned offsets, and the header inside the first 8192 bytes. */
	struct mbi h = {.buf = buf, .len = sizeof(buf)};

	for (size_t off = 0; off + 12 <= sizeof(buf); off += 2) {
		enum mb_probe want =
		    off % 4 == 0 && off + 12 <= MB_SEARCH ? MB_PROBE_OK : MB_PROBE_NONE;

		memset(buf, 0, sizeof(buf));
		h.hdr = off;
		mbi_put32(buf, off, MB_HEADER_MAGIC);
		mbi_set_flags(&h, 3);
		if (multiboot_probe(buf, sizeof(buf)) != want)
			fail_msg("header at %#zx: probe %d, want %d", off,
				 multiboot_probe(buf, sizeof(buf)), want);
	}
	/* A bad magic first, a good one after: the good one counts. */
	memset(buf, 0, sizeof(buf));
	mbi_put32(buf, 8, MB_HEADER_MAGIC);
	h.hdr = 64;
	mbi_put32(buf, 64, MB_HEADER_MAGIC);
	mbi_set_flags(&h, 0);
	assert_int_equal(multiboot_probe(buf, sizeof(buf)), MB_PROBE_OK);
}

static void test_reject_header(void **state)
{
	struct fixture *f = *state;
	struct mbi im = mbi_build(MBI_ELF32);
	uint8_t zero[64] = {0};
	struct mbi none = {.buf = zero, .len = sizeof(zero)};

	expect_fail(f, &none, &args, ENOEXEC, "no multiboot header");
	im.buf[im.hdr + MB_HDR_CHECKSUM] ^= 1;
	expect_fail(f, &im, &args, ENOEXEC, "bad checksum");
	mbi_set_flags(&im, 3 | MB_HDR_F_VIDEO_MODE);
	expect_fail(f, &im, &args, ENOEXEC, "video mode (bit 2)");
	for (unsigned bit = 3; bit < 16; bit++) {
		char what[64];

		mbi_set_flags(&im, 3 | (1u << bit));
		snprintf(what, sizeof(what), "bits %#x that multiboot v1 does not define",
			 1u << bit);
		expect_fail(f, &im, &args, ENOEXEC, what);
	}
	/* Optional bits (16-31) other than 16 are ignored. */
	mbi_set_flags(&im, 3 | (1u << 20) | (1u << 31));
	struct multiboot_boot b;

	load_ok(f, &im, &args, &b);
	/* Bit 16 with the address fields cut off by the end of the file... */
	mbi_set_flags(&im, 3 | MB_HDR_F_ADDRESS);
	struct mbi cut = {.buf = im.buf, .len = im.hdr + 20};

	expect_fail(f, &cut, &args, ENOEXEC, "address fields (flags bit 16) run past the end");
	free(im.buf);
	/* ... or by the end of the first 8192 bytes. */
	uint8_t big[MB_SEARCH + 64] = {0};
	struct mbi late = {.buf = big, .len = sizeof(big), .hdr = MB_SEARCH - 16};

	mbi_put32(big, late.hdr, MB_HEADER_MAGIC);
	mbi_set_flags(&late, 3 | MB_HDR_F_ADDRESS);
	expect_fail(f, &late, &args, ENOEXEC, "first 8192 bytes");
	/* Without bit 16 the file must be an ELF. */
	im = mbi_build(MBI_AOUT);
	mbi_set_flags(&im, 3);
	expect_fail(f, &im, &args, ENOEXEC, "lack bit 16 (address fields) and the file is not");
	free(im.buf);
}

/* A good address-fields image with field @off (MB_HDR_*) set to @v. */
static struct mbi aout_with(size_t off, uint32_t v)
{
	struct mbi im = mbi_build(MBI_AOUT);

	assert_non_null(im.buf);
	mbi_put32(im.buf, im.hdr + off, v);
	return im;
}

static void test_reject_aout(void **state)
{
	static const struct {
		size_t field;
		uint32_t value;
		const char *what;
	} cases[] = {
	    {MB_HDR_LOAD_ADDR, MBI_LOAD + MBI_AOUT_HDR + 4,
	     "load_addr 0x400024 is above header_addr"},
	    {MB_HDR_HEADER_ADDR, MBI_LOAD + MBI_AOUT_HDR + 4,
	     "loading would start before the file"},
	    {MB_HDR_LOAD_END_ADDR, MBI_LOAD - 1, "load_end_addr 0x3fffff is below load_addr"},
	    {MB_HDR_LOAD_END_ADDR, MBI_LOAD + MBI_FILESZ + 1, "past the end of the file"},
	    {MB_HDR_BSS_END_ADDR, MBI_LOAD + MBI_FILESZ - 1, "bss_end_addr 0x401fff is below"},
	    {MB_HDR_ENTRY_ADDR, MBI_LOAD + MBI_MEMSZ, "entry_addr 0x405000 is outside the image"},
	    {MB_HDR_ENTRY_ADDR, MBI_LOAD - 1, "entry_addr 0x3fffff is outside"},
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mbi im = aout_with(cases[i].field, cases[i].value);

		expect_fail(f, &im, &args, ENOEXEC, cases[i].what);
		free(im.buf);
	}
}

/* The address-fields image moved to @load (header, entry and ends with it). */
static struct mbi aout_at(uint32_t load, uint32_t memsz)
{
	struct mbi im = mbi_build(MBI_AOUT);

	mbi_put32(im.buf, im.hdr + MB_HDR_HEADER_ADDR, load + MBI_AOUT_HDR);
	mbi_put32(im.buf, im.hdr + MB_HDR_LOAD_ADDR, load);
	mbi_put32(im.buf, im.hdr + MB_HDR_LOAD_END_ADDR, 0); /* the whole file */
	mbi_put32(im.buf, im.hdr + MB_HDR_BSS_END_ADDR, load + memsz);
	mbi_put32(im.buf, im.hdr + MB_HDR_ENTRY_ADDR, load + 0x40);
	return im;
}

static void test_placement(void **state)
{
	static const struct {
		uint32_t load, memsz;
		const char *what;
	} cases[] = {
	    {0x2000, MBI_MEMSZ, "overlaps kvmini's GDT area [0x1000-0x3000)"},
	    {0x3f000, MBI_MEMSZ, "overlaps kvmini's multiboot structures [0x30000-0x40000)"},
	    {0x9e000, MBI_MEMSZ, "overlaps the legacy area with the ACPI tables"},
	    {RAM - 0x1000, MBI_MEMSZ, "is not in RAM below the PCI hole (64 MiB there)"},
	    /* The loaded end past 4 GiB: 64-bit arithmetic, no wrap to 0x1000. */
	    {0xfffff000u, 0x2000, "bss_end_addr 0x1000 is below the loaded end 0x100001000"},
	};
	struct fixture *f = *state;
	struct multiboot_boot b;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mbi im = aout_at(cases[i].load, cases[i].memsz);

		expect_fail(f, &im, &args, ENOEXEC, cases[i].what);
		free(im.buf);
	}
	/* Low memory between kvmini's structures is fine (as realmode.flat has it). */
	struct mbi im = aout_at(0x8000, MBI_MEMSZ);

	load_ok(f, &im, &args, &b);
	assert_int_equal(b.entry, 0x8040);
	assert_int_equal(b.initrd_addr, MiB); /* not in the legacy area */
	assert_int_equal(*ram(f, 0x8000 + 0x100), mbi_byte(0x100));
	free(im.buf);
}

static void test_reject_elf(void **state)
{
	struct fixture *f = *state;
	struct mbi im = mbi_build(MBI_ELF32);
	Elf32_Ehdr *eh = (Elf32_Ehdr *)im.buf;
	Elf32_Phdr *ph = (Elf32_Phdr *)(im.buf + sizeof(*eh));

	eh->e_entry = MBI_LOAD + MBI_FILESZ; /* in the bss */
	expect_fail(f, &im, &args, ENOEXEC, "ELF entry 0x402000 is not inside the file data");
	eh->e_entry = MBI_ENTRY;
	ph->p_paddr = LAYOUT_MB_START + 0x1000;
	expect_fail(f, &im, &args, ENOEXEC, "overlaps kvmini's multiboot structures");
	ph->p_paddr = MBI_LOAD;
	eh->e_type = ET_DYN;
	expect_fail(f, &im, &args, ENOEXEC, "ET_EXEC");
	eh->e_type = ET_EXEC;
	/* Truncated: the segment's data runs past the end. */
	struct mbi cut = {.buf = im.buf, .len = im.len - 1, .hdr = im.hdr};

	expect_fail(f, &cut, &args, ENOEXEC, "runs past the end of the file");
	free(im.buf);

	im = mbi_build(MBI_ELF64);
	Elf64_Phdr *ph64 = (Elf64_Phdr *)(im.buf + sizeof(Elf64_Ehdr));

	/* Not executable: e_entry stays virtual, outside every segment. */
	ph64->p_flags = PF_R;
	expect_fail(f, &im, &args, ENOEXEC, "ELF entry 0xffffffff80400040 is not inside");
	free(im.buf);
}

static void test_args(void **state)
{
	struct fixture *f = *state;
	struct mbi im = mbi_build(MBI_ELF32);
	struct multiboot_args a = args;
	size_t n = LAYOUT_MB_CMDLINE_MAX;
	char *s = malloc(n);
	struct multiboot_boot b;

	/* "PATH CMDLINE" fills the area exactly with its NUL; one more is too long. */
	memset(s, 'c', n);
	s[n - 1 - strlen(a.kernel_path) - 1] = 0;
	a.cmdline = s;
	load_ok(f, &im, &a, &b);
	assert_int_equal(strlen((char *)ram(f, LAYOUT_MB_CMDLINE)), n - 1);
	s[n - 1 - strlen(a.kernel_path) - 1] = 'c';
	s[n - 1 - strlen(a.kernel_path)] = 0;
	expect_fail(f, &im, &a, E2BIG, "command line with the kernel's path first is longer");
	a.cmdline = args.cmdline;

	memset(s, 'p', n);
	s[LAYOUT_MB_MODSTR_MAX] = 0;
	a.initrd_path = s;
	expect_fail(f, &im, &a, E2BIG, "initrd path is longer than 4095 bytes");
	a.initrd_path = args.initrd_path;

	a.initrd = NULL;
	expect_fail(f, &im, &a, EINVAL, "initrd of 21 bytes has no data");
	a.initrd = s;
	a.initrd_len = RAM - (MBI_LOAD + MBI_MEMSZ) + 1;
	expect_fail(f, &im, &a, E2BIG, "does not fit in RAM between the image's end 0x405000");
	a.initrd_len = RAM - (MBI_LOAD + MBI_MEMSZ);
	a.initrd = calloc(1, a.initrd_len);
	load_ok(f, &im, &a, &b); /* exactly fits */
	assert_int_equal(b.initrd_addr, MBI_LOAD + MBI_MEMSZ);
	free((void *)a.initrd);
	free(s);
	free(im.buf);
}

static void test_small_ram(void **state)
{
	struct guest_mem m;
	struct mbi im = mbi_build(MBI_ELF32);
	struct multiboot_boot b;
	struct errbuf err = {{0}};

	(void)state;
	assert_int_equal(guest_mem_init(&m, 2 * MiB), 0);
	assert_int_equal(multiboot_load(&m, im.buf, im.len, &args, &b, &err), -ENOEXEC);
	assert_non_null(strstr(err.msg, "outside guest RAM"));
	guest_mem_free(&m);
	free(im.buf);
}

#define WITH_RAM(t) cmocka_unit_test_setup_teardown(t, setup, ram_fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    WITH_RAM(test_elf32),
	    WITH_RAM(test_elf64),
	    WITH_RAM(test_aout),
	    WITH_RAM(test_no_initrd_no_cmdline),
	    cmocka_unit_test(test_probe),
	    WITH_RAM(test_reject_header),
	    WITH_RAM(test_reject_aout),
	    WITH_RAM(test_placement),
	    WITH_RAM(test_reject_elf),
	    WITH_RAM(test_args),
	    cmocka_unit_test(test_small_ram),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
