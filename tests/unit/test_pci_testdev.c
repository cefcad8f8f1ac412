// SPDX-License-Identifier: MIT
/*
 * Unit tests for vmm/pci_testdev.c on a real PCI host (config through
 * 0xcf8/0xcfc, BARs on the buses) with a recording kvm_irq_ops: IDs and
 * BARs, kvm-unit-tests' sequence on every test of both BARs, the ioeventfd
 * following the selected test and the BAR, save/load and its refusals.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/pci_testdev.h"

/* ---- recording KVM ---- */

static struct ioe {
	uint64_t addr;
	uint32_t len;
	bool pio, datamatch;
	uint64_t data;
	int fd;
} ioes[4];
static int nioe;
static int refuse; /* make KVM refuse every assign */

static int ioe_change(struct ioe e, bool assign)
{
	for (int i = 0; i < nioe; i++)
		if (ioes[i].addr == e.addr && ioes[i].pio == e.pio) {
			assert_false(assign); /* KVM refuses duplicates */
			assert_int_equal(ioes[i].fd, e.fd);
			assert_int_equal(ioes[i].datamatch, e.datamatch);
			ioes[i] = ioes[--nioe];
			return 0;
		}
	assert_true(assign); /* never a detach of what is not attached */
	if (refuse)
		return -ENOSPC;
	assert_true(nioe < 4);
	ioes[nioe++] = e;
	return 0;
}

static int rec_ioeventfd(void *o, uint64_t a, uint32_t l, int fd, bool pio, bool assign)
{
	return ioe_change((struct ioe){.addr = a, .len = l, .pio = pio, .fd = fd}, assign);
}

static int rec_datamatch(void *o, uint64_t a, uint32_t l, uint64_t data, int fd, bool pio,
			 bool assign)
{
	return ioe_change(
	    (struct ioe){
		.addr = a, .len = l, .pio = pio, .datamatch = true, .data = data, .fd = fd},
	    assign);
}

static int noop_routing(void *o, const struct kvm_irq_routing *t)
{
	return 0;
}

static int noop_irqfd(void *o, int fd, uint32_t gsi, bool assign)
{
	return 0;
}

static const struct kvm_irq_ops rec_ops = {
    .set_gsi_routing = noop_routing,
    .irqfd = noop_irqfd,
    .ioeventfd = rec_ioeventfd,
    .ioeventfd_datamatch = rec_datamatch,
};

/* ---- fixture ---- */

struct env {
	struct bus pio, mmio;
	struct pci_host h;
	void *dev;
	uint64_t mem, io; /* BAR addresses */
};

static uint32_t cfg_addr(unsigned reg)
{
	return 0x80000000u | 1u << 11 | (reg & 0xfc); /* 00:01.0 */
}

static uint32_t cfg_read(struct env *e, unsigned reg)
{
	uint32_t a = cfg_addr(reg), v = 0;

	assert_true(bus_dispatch(&e->pio, 0xcf8, &a, 4, true));
	assert_true(bus_dispatch(&e->pio, 0xcfc, &v, 4, false));
	return v;
}

static void cfg_write(struct env *e, unsigned reg, uint32_t v)
{
	uint32_t a = cfg_addr(reg);

	assert_true(bus_dispatch(&e->pio, 0xcf8, &a, 4, true));
	assert_true(bus_dispatch(&e->pio, 0xcfc, &v, 4, true));
}

static int setup(void **state)
{
	static struct env e;
	struct errbuf err = {{0}};

	memset(&e, 0, sizeof(e));
	nioe = refuse = 0;
	if (bus_init(&e.pio, "pio") || bus_init(&e.mmio, "mmio") ||
	    pci_host_init(&e.h, &e.pio, &e.mmio, 8ULL << 30, &rec_ops, NULL, &err) ||
	    pci_testdev_create(&e.h, &e.dev, &err))
		return -1;
	e.mem = cfg_read(&e, 0x10) & ~0xfu;
	e.io = cfg_read(&e, 0x14) & ~0x3u;
	cfg_write(&e, 0x04, 0x3); /* I/O and memory decoding */
	*state = &e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	pci_testdev_ops.exit(e->dev);
	assert_int_equal(nioe, 0); /* exit detached the ioeventfd */
	pci_host_destroy(&e->h);
	bus_destroy(&e->mmio);
	bus_destroy(&e->pio);
	return 0;
}

/* A BAR access as the guest makes it: @io picks BAR 1 (ports) or BAR 0. */
static uint32_t rd(struct env *e, bool io, uint32_t off, uint32_t len)
{
	uint32_t v = 0;

	assert_true(
	    bus_dispatch(io ? &e->pio : &e->mmio, (io ? e->io : e->mem) + off, &v, len, false));
	return v;
}

static void wr(struct env *e, bool io, uint32_t off, uint32_t v, uint32_t len)
{
	assert_true(
	    bus_dispatch(io ? &e->pio : &e->mmio, (io ? e->io : e->mem) + off, &v, len, true));
}

/* ---- tests ---- */

static void test_ids_and_bars(void **state)
{
	struct env *e = *state;

	assert_int_equal(cfg_read(e, 0x00), PCI_TESTDEV_DEVICE << 16 | PCI_TESTDEV_VENDOR);
	assert_int_equal(cfg_read(e, 0x08) >> 8, 0xff0000);
	assert_int_equal(cfg_read(e, 0x10) & 0x1, 0); /* memory */
	assert_int_equal(cfg_read(e, 0x14) & 0x1, 1); /* I/O */
	assert_true(e->mem >= 0xc0000000u);
	assert_true(e->io >= PCI_IO_START);
	/* No test selected: everything reads 0. */
	assert_int_equal(rd(e, false, 0, 4), 0);
	assert_int_equal(rd(e, true, 16, 4), 0);
}

/* kvm-unit-tests' lib/pci-testdev.c, one test: true if it passes. */
static bool kut_one(struct env *e, bool io, unsigned n, char *name)
{
	uint32_t width, data, off, count;
	unsigned i;

	wr(e, io, 0, n, 1);
	if (rd(e, io, 12, 4) != 0)
		return false;
	width = rd(e, io, 1, 1);
	if (width != 1 && width != 2 && width != 4)
		return false;
	data = rd(e, io, 8, 4);
	off = rd(e, io, 4, 4);
	for (i = 0; i < 16; i++) /* an ioeventfd would take these: not on the bus */
		if (!nioe)
			wr(e, io, off, data, width);
	count = rd(e, io, 12, 4);
	for (i = 0; i < 40; i++)
		if (!(name[i] = (char)rd(e, io, 16 + i, 1)))
			break;
	return count == 0 || count == 16;
}

static void test_kut_sequence(void **state)
{
	static const char *const names[2][3] = {
	    {"mmio-no-eventfd", "mmio-wildcard-eventfd", "mmio-datamatch-eventfd"},
	    {"portio-no-eventfd", "portio-wildcard-eventfd", "portio-datamatch-eventfd"}};
	struct env *e = *state;
	char name[41];

	for (int io = 0; io < 2; io++) {
		for (unsigned n = 0; n < PCI_TESTDEV_NTESTS; n++) {
			assert_true(kut_one(e, io, n, name));
			assert_string_equal(name, names[io][n]);
			/* no-eventfd counts in kvmini; the others have an ioeventfd. */
			assert_int_equal(rd(e, io, 12, 4), n == 0 ? 16 : 0);
			assert_int_equal(nioe, n == 0 ? 0 : 1);
			if (n) {
				assert_int_equal(ioes[0].addr,
						 (io ? e->io : e->mem) + rd(e, io, 4, 4));
				assert_int_equal(ioes[0].pio, io);
				assert_int_equal(ioes[0].len, 1);
				assert_int_equal(ioes[0].datamatch, n == 2);
				if (n == 2)
					assert_int_equal(ioes[0].data, rd(e, io, 8, 4));
			}
		}
		/* Past the last test: none selected, the ioeventfd goes. */
		wr(e, io, 0, PCI_TESTDEV_NTESTS, 1);
		assert_int_equal(nioe, 0);
		assert_int_equal(rd(e, io, 0, 4), 0);
	}
}

static void test_datamatch_and_widths_in_kvmini(void **state)
{
	struct env *e = *state;
	uint32_t off;

	/* KVM refuses: the writes come here and count by the test's rules. */
	refuse = 1;
	wr(e, false, 0, 2, 1);
	assert_int_equal(nioe, 0);
	off = rd(e, false, 4, 4);
	wr(e, false, off, 0xfa, 1);
	wr(e, false, off, 0xfb, 1); /* other data */
	wr(e, false, off, 0xfa, 2); /* other width */
	wr(e, false, off + 1, 0xfa, 1);
	assert_int_equal(rd(e, false, 12, 4), 1);
	/* The wildcard test takes any data and width. */
	wr(e, false, 0, 1, 1);
	off = rd(e, false, 4, 4);
	wr(e, false, off, 0x12, 1);
	wr(e, false, off, 0x1234, 2);
	assert_int_equal(rd(e, false, 12, 4), 2);
	/* The header read at other widths. */
	assert_int_equal(rd(e, false, 0, 4), 1 | 1 << 8);
	assert_int_equal(rd(e, false, 4, 2), off & 0xffff);
	/* A write to the other BAR's test offset does not count here. */
	wr(e, true, 132, 0x12, 1);
	assert_int_equal(rd(e, false, 12, 4), 2);
	/* Selecting again zeroes the count. */
	wr(e, false, 0, 1, 1);
	assert_int_equal(rd(e, false, 12, 4), 0);
}

static void test_ioeventfd_follows_bar(void **state)
{
	struct env *e = *state;
	uint32_t off;

	wr(e, false, 0, 1, 1);
	off = rd(e, false, 4, 4);
	assert_int_equal(nioe, 1);
	/* Memory decoding off: the BAR and its ioeventfd go. */
	cfg_write(e, 0x04, 0x1);
	assert_int_equal(nioe, 0);
	/* Moved while off, then on: the ioeventfd is at the new place. */
	cfg_write(e, 0x10, (uint32_t)e->mem + 0x10000);
	cfg_write(e, 0x04, 0x3);
	assert_int_equal(nioe, 1);
	assert_int_equal(ioes[0].addr, e->mem + 0x10000 + off);
	e->mem += 0x10000;
	assert_int_equal(rd(e, false, 4, 4), off);
	/* Reset: no test, no ioeventfd. */
	pci_testdev_ops.reset(e->dev);
	assert_int_equal(nioe, 0);
	assert_int_equal(rd(e, false, 4, 4), 0);
}

static void test_save_load(void **state)
{
	struct env *e = *state;
	struct errbuf err = {{0}};
	static uint8_t buf[1024], bad[1024];
	int n;
	int32_t cur;

	wr(e, true, 0, 0, 1); /* portio-no-eventfd */
	wr(e, true, rd(e, true, 4, 4), 0xce, 1);
	wr(e, true, rd(e, true, 4, 4), 0xce, 1);
	assert_int_equal(pci_testdev_ops.save(e->dev, buf, 16), -ENOSPC);
	n = pci_testdev_ops.save(e->dev, buf, sizeof(buf));
	assert_true(n > 16);
	/* Somewhere else, with an ioeventfd attached. */
	wr(e, false, 0, 2, 1);
	assert_int_equal(nioe, 1);
	assert_int_equal(pci_testdev_ops.load(e->dev, buf, (size_t)n, &err), 0);
	assert_int_equal(nioe, 0);
	assert_int_equal(rd(e, true, 12, 4), 2);
	assert_int_equal(rd(e, true, 16, 1), 'p');
	/* A test with an ioeventfd comes back attached. */
	wr(e, true, 0, 1, 1);
	n = pci_testdev_ops.save(e->dev, buf, sizeof(buf));
	wr(e, true, 0, 9, 1);
	assert_int_equal(nioe, 0);
	assert_int_equal(pci_testdev_ops.load(e->dev, buf, (size_t)n, &err), 0);
	assert_int_equal(nioe, 1);
	assert_true(ioes[0].pio);

	/* Refusals: size, version, test number, a count without a test. */
	assert_int_equal(pci_testdev_ops.load(e->dev, buf, (size_t)n - 1, &err), -EINVAL);
	memcpy(bad, buf, (size_t)n);
	bad[0] = 2;
	assert_int_equal(pci_testdev_ops.load(e->dev, bad, (size_t)n, &err), -EINVAL);
	memcpy(bad, buf, (size_t)n);
	cur = 6;
	memcpy(bad + 4, &cur, 4);
	assert_int_equal(pci_testdev_ops.load(e->dev, bad, (size_t)n, &err), -EINVAL);
	cur = -2;
	memcpy(bad + 4, &cur, 4);
	assert_int_equal(pci_testdev_ops.load(e->dev, bad, (size_t)n, &err), -EINVAL);
	cur = -1;
	memcpy(bad + 4, &cur, 4);
	bad[8] = 1;
	assert_int_equal(pci_testdev_ops.load(e->dev, bad, (size_t)n, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "count"));
	/* A read-only config byte (the device ID) that differs. */
	memcpy(bad, buf, (size_t)n);
	bad[16 + 2] ^= 1;
	assert_int_equal(pci_testdev_ops.load(e->dev, bad, (size_t)n, &err), -EINVAL);
	/* Still as loaded before. */
	assert_int_equal(nioe, 1);
	assert_int_equal(rd(e, true, 0, 1), 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_ids_and_bars, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kut_sequence, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_datamatch_and_widths_in_kvmini, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ioeventfd_follows_bar, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_save_load, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
