/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for vmm/pc_testdev.c through the port bus: the data register
 * at every width and offset, the IRQ lines (a recording kvm_irq_ops), the
 * page flush (mprotect wrapped and recorded: in-RAM pages only, contents
 * kept, a failed remap ends the VM), realize's unwinding, save/load.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "vmm/pc_testdev.h"
#include "vmm/vm.h"

/* ---- seams ---- */

#define MAX_CALLS 16

static struct {
	uint32_t irq;
	bool level;
} lines[MAX_CALLS];
static int nlines;

static int fake_irq_line(void *opaque, uint32_t irq, bool level)
{
	assert_ptr_equal(opaque, &nlines);
	assert_true(nlines < MAX_CALLS);
	lines[nlines].irq = irq;
	lines[nlines].level = level;
	nlines++;
	return 0;
}

static const struct kvm_irq_ops fake_ops = {.irq_line = fake_irq_line};
static const struct kvm_irq_ops no_line_ops = {0};

static struct {
	void *addr;
	size_t len;
	int prot;
} prots[MAX_CALLS];
static int nprots;
static int fail_prot_call = -1; /* index of the mprotect call that fails */

int __real_mprotect(void *addr, size_t len, int prot);
int __wrap_mprotect(void *addr, size_t len, int prot);
int __wrap_mprotect(void *addr, size_t len, int prot)
{
	int i = nprots++;

	assert_true(i < MAX_CALLS);
	prots[i].addr = addr;
	prots[i].len = len;
	prots[i].prot = prot;
	if (i == fail_prot_call) {
		errno = ENOMEM;
		return -1;
	}
	return __real_mprotect(addr, len, prot);
}

static int exit_calls, exit_status;

void vm_request_exit(struct vm *vm, enum vm_exit_kind kind, int status)
{
	assert_int_equal(kind, VM_EXIT_STATUS);
	exit_calls++;
	exit_status = status;
}

/* The realize path's line driver; the tests give pc_testdev_new their own. */
int vm_irq_line(struct vm *vm, unsigned irq, bool level)
{
	(void)vm, (void)irq, (void)level;
	fail_msg("vm_irq_line: the tests' lines go through fake_ops");
	return -ENOSYS;
}

/* ---- fixture ---- */

struct fixture {
	struct vm vm; /* only its address: what vm_request_exit gets */
	struct bus pio;
	struct bus mmio;
	struct guest_mem mem;
	void *dev;
};

static int setup_size(void **state, uint64_t ram)
{
	static struct fixture f;
	struct errbuf err = {{0}};

	memset(&f, 0, sizeof(f));
	nlines = nprots = exit_calls = 0;
	fail_prot_call = -1;
	if (guest_mem_init(&f.mem, ram) < 0 || bus_init(&f.pio, "pio") < 0 ||
	    bus_init(&f.mmio, "mmio") < 0)
		return -1;
	if (pc_testdev_new(&f.vm, &f.pio, &f.mmio, &f.mem, &fake_ops, &nlines, &f.dev, &err) < 0)
		return -1;
	*state = &f;
	return 0;
}

static int setup(void **state)
{
	return setup_size(state, 64ULL << 20);
}

/* Above 3 GiB RAM splits around the PCI hole (MAP_NORESERVE: nothing is touched). */
static int setup_big(void **state)
{
	return setup_size(state, 5ULL << 30);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	pc_testdev_ops.exit(f->dev);
	bus_destroy(&f->pio);
	bus_destroy(&f->mmio);
	guest_mem_free(&f->mem);
	return 0;
}

static void out(struct fixture *f, uint16_t port, uint32_t v, uint32_t len)
{
	assert_true(bus_dispatch(&f->pio, port, &v, len, true));
}

static uint32_t in(struct fixture *f, uint16_t port, uint32_t len)
{
	uint32_t v = 0;

	assert_true(bus_dispatch(&f->pio, port, &v, len, false));
	return v;
}

/* ---- data register ---- */

static void test_data_widths(void **state)
{
	struct fixture *f = *state;

	out(f, PC_TESTDEV_DATA, 0x12345678, 4);
	assert_int_equal(in(f, PC_TESTDEV_DATA, 4), 0x12345678);
	assert_int_equal(in(f, PC_TESTDEV_DATA, 2), 0x5678);
	assert_int_equal(in(f, PC_TESTDEV_DATA, 1), 0x78);
	/* Narrow writes replace their bytes only. */
	out(f, PC_TESTDEV_DATA, 0xab, 1);
	assert_int_equal(in(f, PC_TESTDEV_DATA, 4), 0x123456ab);
	out(f, PC_TESTDEV_DATA, 0x9999, 2);
	assert_int_equal(in(f, PC_TESTDEV_DATA, 4), 0x12349999);
	/* At the other byte lanes. */
	out(f, PC_TESTDEV_DATA + 1, 0xcd, 1);
	assert_int_equal(in(f, PC_TESTDEV_DATA, 4), 0x1234cd99);
	out(f, PC_TESTDEV_DATA + 2, 0xbeef, 2);
	assert_int_equal(in(f, PC_TESTDEV_DATA, 4), 0xbeefcd99);
	assert_int_equal(in(f, PC_TESTDEV_DATA + 3, 1), 0xbe);
	assert_int_equal(in(f, PC_TESTDEV_DATA + 1, 2), 0xefcd);
	/* A string read (rep insb) sees the low byte each time. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(in(f, PC_TESTDEV_DATA, 1), 0x99);
	pc_testdev_ops.reset(f->dev);
	assert_int_equal(in(f, PC_TESTDEV_DATA, 4), 0);
	assert_int_equal(nlines, 0);
	assert_int_equal(nprots, 0);
}

/* ---- IRQ lines ---- */

static void test_irq_lines(void **state)
{
	/* Port offset, value, width; the line and level KVM must get. Any
	 * nonzero value asserts (QEMU passes it on as the level). */
	static const struct {
		uint16_t line;
		uint32_t v, len;
		bool level;
	} w[] = {
	    {9, 1, 1, true},  {9, 0, 1, false}, {0, 1, 1, true},
	    {23, 1, 1, true}, {14, 2, 1, true}, {10, 0x100, 4, true},
	};
	struct fixture *f = *state;
	uint32_t v = 1;

	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		out(f, PC_TESTDEV_IRQ + w[i].line, w[i].v, w[i].len);
	assert_int_equal(nlines, sizeof(w) / sizeof(w[0]));
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		assert_int_equal(lines[i].irq, w[i].line);
		assert_int_equal(lines[i].level, w[i].level);
	}
	/* Reads drive nothing; past line 23 is not the device's. */
	assert_int_equal(in(f, PC_TESTDEV_IRQ + 5, 1), 0);
	assert_false(bus_dispatch(&f->pio, PC_TESTDEV_IRQ + PC_TESTDEV_NIRQS, &v, 1, true));
	assert_false(bus_dispatch(&f->pio, PC_TESTDEV_IRQ + 23, &v, 2, true));
	assert_int_equal(nlines, sizeof(w) / sizeof(w[0]));
}

/* ---- page flush ---- */

static void test_flush_in_ram(void **state)
{
	struct fixture *f = *state;
	uint8_t *page = guest_mem_ptr(&f->mem, 0x123000, 4096);

	assert_non_null(page);
	memset(page, 0x5a, 4096);
	/* Any address in the page names it. */
	out(f, PC_TESTDEV_FLUSH, 0x123abc, 4);
	assert_int_equal(nprots, 2);
	assert_ptr_equal(prots[0].addr, page);
	assert_int_equal(prots[0].len, 4096);
	assert_int_equal(prots[0].prot, PROT_NONE);
	assert_ptr_equal(prots[1].addr, page);
	assert_int_equal(prots[1].prot, PROT_READ | PROT_WRITE);
	/* Mapped back with its contents. */
	for (int i = 0; i < 4096; i++)
		assert_int_equal(page[i], 0x5a);
	page[7] = 1;
	/* Only a 32-bit write at the port flushes; reads give 0. */
	out(f, PC_TESTDEV_FLUSH, 0x123000, 2);
	out(f, PC_TESTDEV_FLUSH, 0x123000, 1);
	assert_int_equal(in(f, PC_TESTDEV_FLUSH, 4), 0);
	assert_int_equal(nprots, 2);
	assert_int_equal(exit_calls, 0);
}

static void test_flush_out_of_ram_ignored(void **state)
{
	struct fixture *f = *state;

	out(f, PC_TESTDEV_FLUSH, 64 << 20, 4);	 /* just past RAM */
	out(f, PC_TESTDEV_FLUSH, 0xfee00000, 4); /* the LAPIC */
	out(f, PC_TESTDEV_FLUSH, 0xffffffff, 4); /* the last page of 4 GiB */
	assert_int_equal(nprots, 0);
	/* The last page of RAM is RAM. */
	out(f, PC_TESTDEV_FLUSH, (64 << 20) - 1, 4);
	assert_int_equal(nprots, 2);
	assert_ptr_equal(prots[0].addr, guest_mem_ptr(&f->mem, (64 << 20) - 4096, 4096));
	assert_int_equal(exit_calls, 0);
}

static void test_flush_pci_hole_ignored(void **state)
{
	struct fixture *f = *state;

	out(f, PC_TESTDEV_FLUSH, 0xc0000000, 4); /* the hole: RAM moved above 4 GiB */
	assert_int_equal(nprots, 0);
	out(f, PC_TESTDEV_FLUSH, 0xbffff000, 4); /* the last page below it */
	assert_int_equal(nprots, 2);
	assert_int_equal(exit_calls, 0);
}

static void test_flush_failures(void **state)
{
	struct fixture *f = *state;
	uint8_t *page = guest_mem_ptr(&f->mem, 0x5000, 4096);

	/* Cannot drop the mapping: nothing else happens. */
	fail_prot_call = 0;
	out(f, PC_TESTDEV_FLUSH, 0x5000, 4);
	assert_int_equal(nprots, 1);
	assert_int_equal(exit_calls, 0);
	/* Cannot map it back: the VM ends with a host error. */
	nprots = 0;
	fail_prot_call = 1;
	out(f, PC_TESTDEV_FLUSH, 0x5000, 4);
	assert_int_equal(nprots, 2);
	assert_int_equal(exit_calls, 1);
	assert_int_equal(exit_status, EXIT_HOST_ERROR);
	/* Give the page back for teardown. */
	fail_prot_call = -1;
	assert_int_equal(mprotect(page, 4096, PROT_READ | PROT_WRITE), 0);
}

/* ---- realize ---- */

static void other_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	fail_msg("the other device's port was used");
}

static void test_realize_unwinds(void **state)
{
	struct fixture *f = *state;
	struct errbuf err = {{0}};
	void *dev2 = NULL;

	(void)f;
	/* Without KVM_IRQ_LINE there is no device. */
	assert_int_equal(
	    pc_testdev_new(NULL, &f->pio, &f->mmio, &f->mem, &no_line_ops, NULL, &dev2, &err),
	    -ENOSYS);
	/* A second one collides at the IRQ ports after taking none of them... */
	pc_testdev_ops.exit(f->dev);
	f->dev = NULL;
	assert_int_equal(
	    bus_register(&f->pio, PC_TESTDEV_IRQ + 4, 1, other_io, NULL, "other", &err), 0);
	assert_int_equal(
	    pc_testdev_new(NULL, &f->pio, &f->mmio, &f->mem, &fake_ops, &nlines, &dev2, &err),
	    -EEXIST);
	assert_non_null(strstr(err.msg, "other"));
	/* ...and gives back the ports it took: once the range is free, it works. */
	assert_int_equal(bus_unregister(&f->pio, PC_TESTDEV_IRQ + 4), 0);
	assert_int_equal(
	    pc_testdev_new(NULL, &f->pio, &f->mmio, &f->mem, &fake_ops, &nlines, &f->dev, &err), 0);
	out(f, PC_TESTDEV_DATA, 7, 1);
	assert_int_equal(in(f, PC_TESTDEV_DATA, 1), 7);
}

/* ---- save/load ---- */

static void test_save_load(void **state)
{
	struct fixture *f = *state;
	struct errbuf err = {{0}};
	const size_t full = 8 + PC_TESTDEV_IOMEM_LEN;
	uint8_t *buf = calloc(1, full + 16);
	uint32_t v1[2] = {1, 0x1234}, bad[2];
	uint64_t q = 0x0123456789abcdefULL;
	int n;

	assert_non_null(buf);
	out(f, PC_TESTDEV_DATA, 0xcafef00d, 4);
	assert_true(bus_dispatch(&f->mmio, PC_TESTDEV_IOMEM + 0x100, &q, 8, true));
	assert_int_equal(pc_testdev_ops.save(f->dev, buf, 4), -ENOSPC);
	n = pc_testdev_ops.save(f->dev, buf, full + 16);
	assert_int_equal(n, (int)full);
	out(f, PC_TESTDEV_DATA, 0, 4);
	pc_testdev_ops.reset(f->dev);
	q = 0;
	assert_true(bus_dispatch(&f->mmio, PC_TESTDEV_IOMEM + 0x100, &q, 8, false));
	assert_true(q == 0); /* reset cleared the window */
	/* Loaded at an odd address: a snapshot's bytes have no alignment. */
	memmove(buf + 1, buf, full);
	assert_int_equal(pc_testdev_ops.load(f->dev, buf + 1, full, &err), 0);
	assert_int_equal(in(f, PC_TESTDEV_DATA, 4), 0xcafef00d);
	assert_true(bus_dispatch(&f->mmio, PC_TESTDEV_IOMEM + 0x100, &q, 8, false));
	assert_true(q == 0x0123456789abcdefULL);
	/* Refused: wrong size, unknown version; the state stays. */
	assert_int_equal(pc_testdev_ops.load(f->dev, buf + 1, full + 1, &err), -EINVAL);
	assert_int_equal(pc_testdev_ops.load(f->dev, buf + 1, 8, &err), -EINVAL);
	assert_int_equal(pc_testdev_ops.load(f->dev, buf + 1, 3, &err), -EINVAL);
	bad[0] = 3;
	bad[1] = 1;
	assert_int_equal(pc_testdev_ops.load(f->dev, bad, sizeof(bad), &err), -EINVAL);
	assert_non_null(strstr(err.msg, "version"));
	assert_int_equal(in(f, PC_TESTDEV_DATA, 4), 0xcafef00d);
	/* Version 1 (no window) still loads; the window starts empty. */
	assert_int_equal(pc_testdev_ops.load(f->dev, v1, sizeof(v1), &err), 0);
	assert_int_equal(in(f, PC_TESTDEV_DATA, 4), 0x1234);
	assert_true(bus_dispatch(&f->mmio, PC_TESTDEV_IOMEM + 0x100, &q, 8, false));
	assert_true(q == 0);
	free(buf);
}

/* ---- the iomem window ---- */

static void test_iomem(void **state)
{
	struct fixture *f = *state;
	uint64_t q = 0;
	uint8_t b = 0x5a;
	uint32_t d = 0;

	/* Plain memory at every width, little-endian, across the window. */
	q = 0x1122334455667788ULL;
	assert_true(bus_dispatch(&f->mmio, PC_TESTDEV_IOMEM, &q, 8, true));
	assert_true(bus_dispatch(&f->mmio, PC_TESTDEV_IOMEM + 2, &d, 4, false));
	assert_int_equal(d, 0x33445566);
	assert_true(
	    bus_dispatch(&f->mmio, PC_TESTDEV_IOMEM + PC_TESTDEV_IOMEM_LEN - 1, &b, 1, true));
	b = 0;
	assert_true(
	    bus_dispatch(&f->mmio, PC_TESTDEV_IOMEM + PC_TESTDEV_IOMEM_LEN - 1, &b, 1, false));
	assert_int_equal(b, 0x5a);
	/* Nothing past either end belongs to it. */
	assert_false(bus_dispatch(&f->mmio, PC_TESTDEV_IOMEM + PC_TESTDEV_IOMEM_LEN, &b, 1, true));
	assert_false(bus_dispatch(&f->mmio, PC_TESTDEV_IOMEM - 1, &b, 1, true));
	assert_false(
	    bus_dispatch(&f->mmio, PC_TESTDEV_IOMEM + PC_TESTDEV_IOMEM_LEN - 4, &q, 8, true));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_data_widths, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_irq_lines, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flush_in_ram, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flush_out_of_ram_ignored, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flush_pci_hole_ignored, setup_big, teardown),
	    cmocka_unit_test_setup_teardown(test_flush_failures, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_realize_unwinds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_save_load, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_iomem, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
