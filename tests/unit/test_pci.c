// SPDX-License-Identifier: MIT
/*
 * PCI config space through the real 0xcf8/0xcfc ports: IDs, read-only bits,
 * BAR sizing and placement, command-register decoding onto the MMIO bus,
 * capability lists, and hostile writes.
 */
#include <errno.h>
#include <linux/pci_regs.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/layout.h"
#include "vmm/pci.h"

static int noop_routing(void *o, const struct kvm_irq_routing *t)
{
	return 0;
}
static int noop_irqfd(void *o, int fd, uint32_t gsi, bool assign)
{
	return 0;
}
static int noop_ioeventfd(void *o, uint64_t a, uint32_t l, int fd, bool pio, bool assign)
{
	return 0;
}
static const struct kvm_irq_ops noop_ops = {noop_routing, noop_irqfd, noop_ioeventfd};

#define MMIO64_START (8ULL << 30)

struct env {
	struct bus pio, mmio;
	struct pci_host h;
};

static struct env *env_new(void)
{
	struct env *e = test_calloc(1, sizeof(*e));
	struct errbuf err;

	assert_int_equal(bus_init(&e->pio, "pio"), 0);
	assert_int_equal(bus_init(&e->mmio, "mmio"), 0);
	assert_int_equal(
	    pci_host_init(&e->h, &e->pio, &e->mmio, MMIO64_START, &noop_ops, NULL, &err), 0);
	return e;
}

static void env_free(struct env *e)
{
	pci_host_destroy(&e->h);
	bus_destroy(&e->mmio);
	bus_destroy(&e->pio);
	test_free(e);
}

static uint32_t addr_of(unsigned bus, unsigned slot, unsigned fn, unsigned reg)
{
	return 0x80000000u | bus << 16 | slot << 11 | fn << 8 | (reg & 0xfc);
}

static uint32_t cfg_read_bdf(struct env *e, uint32_t latch, unsigned reg, uint32_t len)
{
	uint32_t v = 0;

	assert_true(bus_dispatch(&e->pio, 0xcf8, &latch, 4, true));
	assert_true(bus_dispatch(&e->pio, 0xcfc + (reg & 3), &v, len, false));
	return v;
}

static uint32_t cfg_read(struct env *e, unsigned slot, unsigned reg, uint32_t len)
{
	return cfg_read_bdf(e, addr_of(0, slot, 0, reg), reg, len);
}

static void cfg_write(struct env *e, unsigned slot, unsigned reg, uint32_t v, uint32_t len)
{
	uint32_t latch = addr_of(0, slot, 0, reg);

	assert_true(bus_dispatch(&e->pio, 0xcf8, &latch, 4, true));
	assert_true(bus_dispatch(&e->pio, 0xcfc + (reg & 3), &v, len, true));
}

struct region_log {
	int calls;
	uint64_t off;
	uint64_t mapped_at;
	int map_calls;
};

static void region_fn(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	struct region_log *l = opaque;

	l->calls++;
	l->off = off;
	if (!is_write)
		memset(data, 0x42, len);
}

static void region_map(void *opaque, uint64_t addr)
{
	struct region_log *l = opaque;

	l->map_calls++;
	l->mapped_at = addr;
}

static const struct pci_device_info dev_info = {
    .name = "testdev",
    .vendor_id = 0x1af4,
    .device_id = 0x1042,
    .subsystem_vendor_id = 0x1af4,
    .subsystem_id = 2,
    .revision = 1,
    .class_code = 0x010000,
};

static struct pci_device *add_dev(struct env *e)
{
	struct pci_device *d;
	struct errbuf err;

	assert_int_equal(pci_host_add_device(&e->h, &dev_info, NULL, &d, &err), 0);
	return d;
}

static void test_host_bridge(void **st)
{
	struct env *e = env_new();

	assert_int_equal(cfg_read(e, 0, PCI_VENDOR_ID, 2), PCI_HOST_VENDOR);
	assert_int_equal(cfg_read(e, 0, PCI_DEVICE_ID, 2), PCI_HOST_DEVICE);
	assert_int_equal(cfg_read(e, 0, PCI_CLASS_REVISION, 4) >> 8, 0x060000);
	assert_int_equal(cfg_read(e, 0, PCI_HEADER_TYPE, 1), 0);
	/* Nothing else on the bus yet. */
	for (unsigned s = 1; s < 32; s++)
		assert_int_equal(cfg_read(e, s, 0, 4), 0xffffffffu);
	env_free(e);
}

static void test_address_latch(void **st)
{
	struct env *e = env_new();
	uint32_t v = 0x80000003, r = 0;
	uint8_t b = 0;

	/* Linux's type-1 probe: write 0x80000000, read it back. */
	assert_true(bus_dispatch(&e->pio, 0xcf8, &v, 4, true));
	assert_true(bus_dispatch(&e->pio, 0xcf8, &r, 4, false));
	assert_int_equal(r, 0x80000000u); /* bits 1:0 read as zero */
	/* ...but select bytes of the data window as in QEMU: 0x80000002,
	 * then 16 bits at 0xcfc, is the device ID (kvm-unit-tests' pci_find_dev);
	 * 0x80000003 then 32 bits at 0xcfe would pass the end of the dword:
	 * fine, config space goes on; past byte 255 reads all-ones. */
	v = 0x80000002;
	assert_true(bus_dispatch(&e->pio, 0xcf8, &v, 4, true));
	r = 0;
	assert_true(bus_dispatch(&e->pio, 0xcfc, &r, 2, false));
	assert_int_equal(r, PCI_HOST_DEVICE);
	v = 0x800000ff;
	assert_true(bus_dispatch(&e->pio, 0xcf8, &v, 4, true));
	assert_true(bus_dispatch(&e->pio, 0xcfc, &r, 4, false));
	assert_int_equal(r, 0xffffffffu);
	v = 0x80000003;
	assert_true(bus_dispatch(&e->pio, 0xcf8, &v, 4, true));
	/* Narrow accesses to the address port are not the latch. */
	b = 0x12;
	assert_true(bus_dispatch(&e->pio, 0xcfb, &b, 1, true));
	assert_true(bus_dispatch(&e->pio, 0xcf8, &r, 4, false));
	assert_int_equal(r, 0x80000000u);
	assert_true(bus_dispatch(&e->pio, 0xcf9, &b, 1, false));
	assert_int_equal(b, 0xff);
	/* Enable bit clear, another bus, another function: all-ones. */
	assert_int_equal(cfg_read_bdf(e, addr_of(0, 0, 0, 0) & ~0x80000000u, 0, 4), 0xffffffffu);
	assert_int_equal(cfg_read_bdf(e, addr_of(1, 0, 0, 0), 0, 4), 0xffffffffu);
	assert_int_equal(cfg_read_bdf(e, addr_of(0, 0, 3, 0), 0, 4), 0xffffffffu);
	/* An access that would straddle 0xcff is not delivered. */
	assert_false(bus_dispatch(&e->pio, 0xcfe, &r, 4, false));
	env_free(e);
}

static void test_narrow_accesses(void **st)
{
	struct env *e = env_new();
	struct pci_device *d = add_dev(e);

	assert_int_equal(d->slot, 1);
	assert_int_equal(cfg_read(e, 1, 0, 4), 0x10421af4);
	assert_int_equal(cfg_read(e, 1, 0, 1), 0xf4);
	assert_int_equal(cfg_read(e, 1, 1, 1), 0x1a);
	assert_int_equal(cfg_read(e, 1, 2, 2), 0x1042);
	assert_int_equal(cfg_read(e, 1, 3, 1), 0x10);
	assert_int_equal(cfg_read(e, 1, PCI_CLASS_REVISION, 4), 0x01000001);
	assert_int_equal(cfg_read(e, 1, PCI_SUBSYSTEM_VENDOR_ID, 4), 0x00021af4);
	/* Interrupt line is scratch; its byte neighbour (pin) is read-only 0. */
	cfg_write(e, 1, PCI_INTERRUPT_LINE, 0xffff, 2);
	assert_int_equal(cfg_read(e, 1, PCI_INTERRUPT_LINE, 2), 0x00ff);
	env_free(e);
}

static void test_read_only_fields(void **st)
{
	struct env *e = env_new();
	struct pci_device *d = add_dev(e);
	struct errbuf err;
	uint8_t before[PCI_CFG_SIZE];

	assert_int_equal(pci_add_bar(d, 0, PCI_BAR_MEM32, 0x4000, false, &err), 0);
	assert_true(pci_add_capability(d, 0x09, 16, &err) > 0);
	memcpy(before, d->config, sizeof(before));
	/* Every dword of the header and capabilities gets all-ones then zeros,
	 * except the BAR (sizing is tested separately) and the command word. */
	for (unsigned reg = 0; reg < PCI_CFG_SIZE; reg += 4) {
		if (reg == PCI_COMMAND || reg == PCI_BASE_ADDRESS_0 || reg == PCI_CACHE_LINE_SIZE ||
		    reg == PCI_INTERRUPT_LINE)
			continue;
		cfg_write(e, 1, reg, 0xffffffff, 4);
		cfg_write(e, 1, reg, 0, 4);
		assert_memory_equal(&d->config[reg], &before[reg], 4);
	}
	/* Command: only the defined bits stick; status error bits are W1C and
	 * the capability-list bit is read-only. */
	cfg_write(e, 1, PCI_COMMAND, 0xffffffff, 4);
	assert_int_equal(cfg_read(e, 1, PCI_COMMAND, 2), 0x0547);
	assert_int_equal(cfg_read(e, 1, PCI_STATUS, 2), PCI_STATUS_CAP_LIST);
	d->config[PCI_STATUS + 1] |= 0x80; /* pretend a parity error was seen */
	cfg_write(e, 1, PCI_STATUS, 0x0000, 2);
	assert_int_equal(cfg_read(e, 1, PCI_STATUS, 2), PCI_STATUS_CAP_LIST | 0x8000);
	cfg_write(e, 1, PCI_STATUS, 0x8000, 2);
	assert_int_equal(cfg_read(e, 1, PCI_STATUS, 2), PCI_STATUS_CAP_LIST);
	env_free(e);
}

static void test_bar_sizing(void **st)
{
	struct env *e = env_new();
	struct pci_device *d = add_dev(e);
	struct errbuf err;
	uint32_t orig;

	assert_int_equal(pci_add_bar(d, 0, PCI_BAR_MEM32, 0x4000, false, &err), 0);
	assert_int_equal(pci_add_bar(d, 2, PCI_BAR_MEM64, 1ULL << 33, true, &err), 0);
	assert_int_equal(pci_add_bar(d, 4, PCI_BAR_IO, 0x20, false, &err), 0);

	orig = cfg_read(e, 1, PCI_BASE_ADDRESS_0, 4);
	assert_int_equal(orig, 0xc0000000u);
	cfg_write(e, 1, PCI_BASE_ADDRESS_0, 0xffffffff, 4);
	assert_int_equal(cfg_read(e, 1, PCI_BASE_ADDRESS_0, 4), 0xffffc000u);
	cfg_write(e, 1, PCI_BASE_ADDRESS_0, orig, 4);
	assert_int_equal(cfg_read(e, 1, PCI_BASE_ADDRESS_0, 4), orig);
	/* A 16-bit write changes only its half. */
	cfg_write(e, 1, PCI_BASE_ADDRESS_0 + 2, 0xd123, 2);
	assert_int_equal(cfg_read(e, 1, PCI_BASE_ADDRESS_0, 4), 0xd1230000u);

	/* 64-bit, prefetchable, 8 GiB: the low dword has no address bits. */
	assert_int_equal(cfg_read(e, 1, PCI_BASE_ADDRESS_2, 4), 0x0000000cu);
	assert_int_equal(cfg_read(e, 1, PCI_BASE_ADDRESS_3, 4), (uint32_t)(MMIO64_START >> 32));
	cfg_write(e, 1, PCI_BASE_ADDRESS_2, 0xffffffff, 4);
	cfg_write(e, 1, PCI_BASE_ADDRESS_3, 0xffffffff, 4);
	assert_int_equal(cfg_read(e, 1, PCI_BASE_ADDRESS_2, 4), 0x0000000cu);
	assert_int_equal(cfg_read(e, 1, PCI_BASE_ADDRESS_3, 4), 0xfffffffeu);

	/* I/O, 32 ports: 16-bit decode, bit 0 set. */
	assert_int_equal(cfg_read(e, 1, PCI_BASE_ADDRESS_4, 4), PCI_IO_START | 1);
	cfg_write(e, 1, PCI_BASE_ADDRESS_4, 0xffffffff, 4);
	assert_int_equal(cfg_read(e, 1, PCI_BASE_ADDRESS_4, 4), 0x0000ffe1u);

	/* Unimplemented BARs and the ROM BAR stay zero. */
	cfg_write(e, 1, PCI_BASE_ADDRESS_1, 0xffffffff, 4);
	assert_int_equal(cfg_read(e, 1, PCI_BASE_ADDRESS_1, 4), 0);
	cfg_write(e, 1, PCI_ROM_ADDRESS, 0xffffffff, 4);
	assert_int_equal(cfg_read(e, 1, PCI_ROM_ADDRESS, 4), 0);
	env_free(e);
}

static void test_bar_placement(void **st)
{
	struct env *e = env_new();
	struct pci_device *a = add_dev(e), *b = add_dev(e);
	struct errbuf err;

	assert_int_equal(b->slot, 2);
	assert_int_equal(pci_add_bar(a, 0, PCI_BAR_MEM32, 0x1000, false, &err), 0);
	assert_int_equal(pci_add_bar(a, 1, PCI_BAR_MEM32, 0x4000, false, &err), 0);
	assert_int_equal(pci_add_bar(b, 0, PCI_BAR_MEM32, 0x1000, false, &err), 0);
	assert_int_equal(pci_add_bar(b, 2, PCI_BAR_MEM64, 0x100000, false, &err), 0);
	assert_int_equal(pci_add_bar(b, 4, PCI_BAR_MEM64, 0x1000, false, &err), 0);
	assert_int_equal(pci_config_get32(a, PCI_BASE_ADDRESS_0), 0xc0000000u);
	assert_int_equal(pci_config_get32(a, PCI_BASE_ADDRESS_1), 0xc0004000u); /* aligned */
	assert_int_equal(pci_config_get32(b, PCI_BASE_ADDRESS_0), 0xc0008000u);
	assert_int_equal(pci_config_get32(b, PCI_BASE_ADDRESS_3), 2);
	assert_int_equal(pci_config_get32(b, PCI_BASE_ADDRESS_2), 4);
	assert_int_equal(pci_config_get32(b, PCI_BASE_ADDRESS_4), 0x100004);

	/* Bad requests. */
	assert_int_equal(pci_add_bar(a, 0, PCI_BAR_MEM32, 0x1000, false, &err), -EINVAL);
	assert_int_equal(pci_add_bar(a, 5, PCI_BAR_MEM64, 0x1000, false, &err), -EINVAL);
	assert_int_equal(pci_add_bar(a, 2, PCI_BAR_MEM32, 0x1800, false, &err), -EINVAL);
	assert_int_equal(pci_add_bar(a, 2, PCI_BAR_MEM32, 0x800, false, &err), -EINVAL);
	assert_int_equal(pci_add_bar(a, 2, PCI_BAR_IO, 0x200, false, &err), -EINVAL);
	assert_int_equal(pci_add_bar(b, 3, PCI_BAR_MEM32, 0x1000, false, &err), -EINVAL);
	/* The 32-bit hole is finite: 1 GiB BARs run out before the IOAPIC. */
	assert_int_equal(pci_add_bar(a, 2, PCI_BAR_MEM32, 1ULL << 30, false, &err), -ENOSPC);
	assert_non_null(strstr(err.msg, "32-bit"));
	env_free(e);
}

static void test_slots_run_out(void **st)
{
	struct env *e = env_new();
	struct pci_device *d;
	struct errbuf err;

	for (int i = 1; i < 32; i++)
		assert_int_equal(pci_host_add_device(&e->h, &dev_info, NULL, &d, &err), 0);
	assert_int_equal(pci_host_add_device(&e->h, &dev_info, NULL, &d, &err), -ENOSPC);
	assert_non_null(strstr(err.msg, "testdev"));
	env_free(e);
}

static bool mmio_hit(struct env *e, uint64_t addr)
{
	uint32_t v = 0;

	return bus_dispatch(&e->mmio, addr, &v, 4, false);
}

static void test_command_enables_decoding(void **st)
{
	struct env *e = env_new();
	struct pci_device *d = add_dev(e);
	struct region_log lg = {0};
	struct pci_region r = {.offset = 0x1000,
			       .len = 0x100,
			       .fn = region_fn,
			       .opaque = &lg,
			       .map = region_map,
			       .name = "r"};
	struct errbuf err;

	assert_int_equal(pci_add_bar(d, 0, PCI_BAR_MEM32, 0x4000, false, &err), 0);
	assert_int_equal(pci_bar_add_region(d, 0, &r, &err), 0);
	assert_int_equal(pci_bar_address(d, 0), PCI_BAR_UNMAPPED);
	assert_false(mmio_hit(e, 0xc0001000));

	cfg_write(e, 1, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	assert_int_equal(pci_bar_address(d, 0), 0xc0000000u);
	assert_int_equal(lg.map_calls, 1);
	assert_int_equal(lg.mapped_at, 0xc0001000u);
	assert_true(mmio_hit(e, 0xc0001010));
	assert_int_equal(lg.off, 0x10);
	/* Outside the region but inside the BAR: no one answers. */
	assert_false(mmio_hit(e, 0xc0000000));

	/* Moving the BAR while decoding moves the region. */
	cfg_write(e, 1, PCI_BASE_ADDRESS_0, 0xd0000000, 4);
	assert_false(mmio_hit(e, 0xc0001010));
	assert_true(mmio_hit(e, 0xd0001020));
	assert_int_equal(lg.mapped_at, 0xd0001000u);

	/* I/O enable alone does not decode a memory BAR. */
	cfg_write(e, 1, PCI_COMMAND, PCI_COMMAND_IO, 2);
	assert_false(mmio_hit(e, 0xd0001020));
	assert_int_equal(lg.mapped_at, PCI_BAR_UNMAPPED);
	/* Sizing with decoding on: the all-ones pattern is never mapped. */
	cfg_write(e, 1, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	cfg_write(e, 1, PCI_BASE_ADDRESS_0, 0xffffffff, 4);
	assert_int_equal(pci_bar_address(d, 0), PCI_BAR_UNMAPPED);
	assert_false(mmio_hit(e, 0xffffd000));
	/* Address 0 means unassigned. */
	cfg_write(e, 1, PCI_BASE_ADDRESS_0, 0, 4);
	assert_int_equal(pci_bar_address(d, 0), PCI_BAR_UNMAPPED);
	cfg_write(e, 1, PCI_BASE_ADDRESS_0, 0xc0000000, 4);
	assert_true(mmio_hit(e, 0xc0001000));
	cfg_write(e, 1, PCI_COMMAND, 0, 2);
	assert_false(mmio_hit(e, 0xc0001000));
	env_free(e);
}

static void test_bar_conflicts(void **st)
{
	struct env *e = env_new();
	struct pci_device *a = add_dev(e), *b = add_dev(e);
	struct region_log la = {0}, lb = {0};
	struct pci_region ra = {
	    .offset = 0, .len = 0x1000, .fn = region_fn, .opaque = &la, .name = "a"};
	struct pci_region rb = {
	    .offset = 0, .len = 0x1000, .fn = region_fn, .opaque = &lb, .name = "b"};
	struct errbuf err;

	assert_int_equal(pci_add_bar(a, 0, PCI_BAR_MEM32, 0x1000, false, &err), 0);
	assert_int_equal(pci_add_bar(b, 0, PCI_BAR_MEM32, 0x1000, false, &err), 0);
	assert_int_equal(pci_bar_add_region(a, 0, &ra, &err), 0);
	assert_int_equal(pci_bar_add_region(b, 0, &rb, &err), 0);
	cfg_write(e, 1, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	cfg_write(e, 2, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	/* b moves onto a: a keeps its address, b is left unmapped. */
	cfg_write(e, 2, PCI_BASE_ADDRESS_0, 0xc0000000, 4);
	assert_int_equal(pci_bar_address(a, 0), 0xc0000000u);
	assert_int_equal(pci_bar_address(b, 0), PCI_BAR_UNMAPPED);
	assert_true(mmio_hit(e, 0xc0000000));
	assert_int_equal(la.calls, 1);
	assert_int_equal(lb.calls, 0);
	/* Moving it somewhere free maps it again. */
	cfg_write(e, 2, PCI_BASE_ADDRESS_0, 0xc0100000, 4);
	assert_int_equal(pci_bar_address(b, 0), 0xc0100000u);

	/* Regions must fit their BAR and not overlap each other. */
	ra.offset = 0x800;
	ra.len = 0x100;
	assert_int_equal(pci_bar_add_region(a, 0, &ra, &err), -EEXIST);
	ra.offset = 0xfff;
	ra.len = 2;
	assert_int_equal(pci_bar_add_region(a, 0, &ra, &err), -EINVAL);
	assert_int_equal(pci_bar_add_region(a, 1, &ra, &err), -EINVAL);
	env_free(e);
}

static void test_mem64_bar_mapping(void **st)
{
	struct env *e = env_new();
	struct pci_device *d = add_dev(e);
	struct region_log lg = {0};
	struct pci_region r = {.len = 0x1000, .fn = region_fn, .opaque = &lg, .name = "r"};
	struct errbuf err;

	assert_int_equal(pci_add_bar(d, 2, PCI_BAR_MEM64, 0x1000, false, &err), 0);
	assert_int_equal(pci_bar_add_region(d, 2, &r, &err), 0);
	cfg_write(e, 1, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	assert_int_equal(pci_bar_address(d, 2), MMIO64_START);
	assert_true(mmio_hit(e, MMIO64_START + 8));
	/* The guest writes the halves one at a time. */
	cfg_write(e, 1, PCI_BASE_ADDRESS_2, 0x40000000, 4);
	cfg_write(e, 1, PCI_BASE_ADDRESS_3, 0x10, 4);
	assert_int_equal(pci_bar_address(d, 2), 0x1040000000ULL);
	assert_true(mmio_hit(e, 0x1040000000ULL));
	/* Past the 52-bit limit (and the wrapping all-ones pattern): unmapped. */
	cfg_write(e, 1, PCI_BASE_ADDRESS_3, 0x00100000, 4);
	assert_int_equal(pci_bar_address(d, 2), PCI_BAR_UNMAPPED);
	cfg_write(e, 1, PCI_BASE_ADDRESS_2, 0xffffffff, 4);
	cfg_write(e, 1, PCI_BASE_ADDRESS_3, 0xffffffff, 4);
	assert_int_equal(pci_bar_address(d, 2), PCI_BAR_UNMAPPED);
	env_free(e);
}

static void test_io_bar_mapping(void **st)
{
	struct env *e = env_new();
	struct pci_device *d = add_dev(e);
	struct region_log lg = {0};
	struct pci_region r = {.len = 0x10, .fn = region_fn, .opaque = &lg, .name = "io"};
	struct errbuf err;
	uint8_t b;

	assert_int_equal(pci_add_bar(d, 0, PCI_BAR_IO, 0x10, false, &err), 0);
	assert_int_equal(pci_bar_add_region(d, 0, &r, &err), 0);
	cfg_write(e, 1, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	assert_false(bus_dispatch(&e->pio, PCI_IO_START + 1, &b, 1, false));
	cfg_write(e, 1, PCI_COMMAND, PCI_COMMAND_IO, 2);
	assert_true(bus_dispatch(&e->pio, PCI_IO_START + 1, &b, 1, false));
	assert_int_equal(lg.off, 1);
	/* Moving it onto the config ports is refused by the bus: unmapped. */
	cfg_write(e, 1, PCI_BASE_ADDRESS_0, 0xcf0, 4);
	assert_int_equal(pci_bar_address(d, 0), PCI_BAR_UNMAPPED);
	assert_int_equal(cfg_read(e, 1, PCI_VENDOR_ID, 2), 0x1af4);
	env_free(e);
}

static void test_capability_list(void **st)
{
	struct env *e = env_new();
	struct pci_device *d = add_dev(e);
	struct errbuf err;
	int offs[3], n = 0, c;
	uint8_t ids[3] = {0x11, 0x09, 0x09};
	unsigned p;

	assert_int_equal(cfg_read(e, 1, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST, 0);
	assert_int_equal(cfg_read(e, 1, PCI_CAPABILITY_LIST, 1), 0);
	offs[0] = pci_add_capability(d, 0x11, 12, &err);
	offs[1] = pci_add_capability(d, 0x09, 17, &err);
	offs[2] = pci_add_capability(d, 0x09, 16, &err);
	assert_int_equal(offs[0], 0x40);
	assert_int_equal(offs[1], 0x4c);
	assert_int_equal(offs[2], 0x60); /* 0x4c + 17 rounded up to a dword */
	assert_int_not_equal(cfg_read(e, 1, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST, 0);
	/* Walk as a guest does. */
	for (p = cfg_read(e, 1, PCI_CAPABILITY_LIST, 1); p; p = cfg_read(e, 1, p + 1, 1)) {
		assert_true(n < 3);
		assert_int_equal(p, offs[n]);
		assert_int_equal(cfg_read(e, 1, p, 1), ids[n]);
		n++;
	}
	assert_int_equal(n, 3);
	/* The guest cannot rewire the list. */
	cfg_write(e, 1, 0x40, 0xffffffff, 4);
	cfg_write(e, 1, PCI_CAPABILITY_LIST, 0x80, 1);
	assert_int_equal(cfg_read(e, 1, PCI_CAPABILITY_LIST, 1), 0x40);
	assert_int_equal(cfg_read(e, 1, 0x40, 2), 0x4c11);
	/* Writable cap bytes are exactly the ones a device opened. */
	pci_config_set_wmask(d, offs[2] + 4, 0x00ff, 2);
	cfg_write(e, 1, offs[2] + 4, 0xabcd, 2);
	assert_int_equal(cfg_read(e, 1, offs[2] + 4, 2), 0x00cd);
	/* Fill config space to the end, then no more. */
	while ((c = pci_add_capability(d, 0x09, 16, &err)) > 0)
		assert_true(c + 16 <= PCI_CFG_SIZE);
	assert_int_equal(c, -ENOSPC);
	assert_int_equal(pci_add_capability(d, 0x09, 1, &err), -ENOSPC);
	env_free(e);
}

struct hook_log {
	struct pci_device *d;
	int reads, writes;
	uint32_t last_off, last_len;
};

static void hook_read(void *opaque, uint32_t off, uint32_t len)
{
	struct hook_log *h = opaque;

	h->reads++;
	pci_config_set8(h->d, 0x44, (uint8_t)h->reads); /* live value */
}

static void hook_write(void *opaque, uint32_t off, uint32_t len)
{
	struct hook_log *h = opaque;

	h->writes++;
	h->last_off = off;
	h->last_len = len;
}

static const struct pci_device_info hook_info = {
    .name = "hooked",
    .vendor_id = 0x1234,
    .device_id = 0x5678,
    .config_read = hook_read,
    .config_write = hook_write,
};

static void test_config_hooks_and_bar_access(void **st)
{
	struct env *e = env_new();
	struct hook_log hl = {0};
	struct region_log lg = {0};
	struct pci_region r = {
	    .offset = 0x100, .len = 0x10, .fn = region_fn, .opaque = &lg, .name = "r"};
	struct pci_device *d;
	struct errbuf err;
	uint32_t v = 0;

	assert_int_equal(pci_host_add_device(&e->h, &hook_info, &hl, &d, &err), 0);
	hl.d = d;
	assert_int_equal(cfg_read(e, 1, 0x44, 1), 1);
	assert_int_equal(cfg_read(e, 1, 0x44, 1), 2);
	cfg_write(e, 1, 0x46, 0x1, 2);
	assert_int_equal(hl.writes, 1);
	assert_int_equal(hl.last_off, 0x46);
	assert_int_equal(hl.last_len, 2);

	assert_int_equal(pci_add_bar(d, 0, PCI_BAR_MEM32, 0x1000, false, &err), 0);
	assert_int_equal(pci_bar_add_region(d, 0, &r, &err), 0);
	assert_true(pci_bar_access(d, 0, 0x104, &v, 4, false));
	assert_int_equal(v, 0x42424242);
	assert_int_equal(lg.off, 4);
	assert_false(pci_bar_access(d, 0, 0x10e, &v, 4, false)); /* crosses the region end */
	assert_int_equal(v, 0xffffffffu);
	assert_false(pci_bar_access(d, 3, 0, &v, 4, false));
	env_free(e);
}

static void test_host_snapshot(void **st)
{
	struct env *e = env_new(), *f = env_new();
	struct errbuf err;
	uint8_t buf[512], bad[512];
	int n;

	assert_int_equal(pci_host_save(&e->h, buf, 8), -ENOSPC);
	cfg_write(e, 0, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	cfg_write(e, 0, PCI_INTERRUPT_LINE, 0x0b, 1);
	cfg_read(e, 0, PCI_VENDOR_ID, 4); /* leaves the latch on 00.0 reg 0 */
	n = pci_host_save(&e->h, buf, sizeof(buf));
	assert_true(n > 0);
	/* Into a fresh host: same latch, same writable bytes. */
	assert_int_equal(pci_host_load(&f->h, buf, (size_t)n, &err), 0);
	assert_int_equal(f->h.addr_latch, e->h.addr_latch);
	assert_int_equal(cfg_read(f, 0, PCI_COMMAND, 2), PCI_COMMAND_MEMORY);
	assert_int_equal(cfg_read(f, 0, PCI_INTERRUPT_LINE, 1), 0x0b);
	/* Latch bits 1:0 (kept, as QEMU, though they read as 0) survive. */
	memcpy(bad, buf, (size_t)n);
	bad[4] |= 2;
	assert_int_equal(pci_host_load(&f->h, bad, (size_t)n, &err), 0);
	assert_int_equal(f->h.addr_latch, e->h.addr_latch | 2);
	/* Hostile files: wrong size, version, a read-only byte. */
	assert_int_equal(pci_host_load(&f->h, buf, (size_t)n - 1, &err), -EINVAL);
	memcpy(bad, buf, (size_t)n);
	bad[0] = 9;
	assert_int_equal(pci_host_load(&f->h, bad, (size_t)n, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "version"));
	memcpy(bad, buf, (size_t)n);
	bad[8 + PCI_VENDOR_ID] ^= 0xff;
	assert_int_equal(pci_host_load(&f->h, bad, (size_t)n, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "read-only config byte 0x00"));
	assert_int_equal(cfg_read(f, 0, PCI_VENDOR_ID, 2), PCI_HOST_VENDOR);
	env_free(f);
	env_free(e);
}

static void test_device_config_snapshot(void **st)
{
	struct env *e = env_new();
	struct pci_device *a = add_dev(e), *b = add_dev(e);
	struct region_log la = {0}, lb = {0};
	struct pci_region ra = {.offset = 0,
				.len = 0x1000,
				.fn = region_fn,
				.opaque = &la,
				.map = region_map,
				.name = "a"};
	struct pci_region rb = {.offset = 0,
				.len = 0x1000,
				.fn = region_fn,
				.opaque = &lb,
				.map = region_map,
				.name = "b"};
	uint8_t ca[PCI_CFG_SIZE], cb[PCI_CFG_SIZE], bad[PCI_CFG_SIZE];
	struct errbuf err;

	assert_int_equal(pci_add_bar(a, 0, PCI_BAR_MEM32, 0x1000, false, &err), 0);
	assert_int_equal(pci_add_bar(b, 0, PCI_BAR_MEM32, 0x1000, false, &err), 0);
	assert_int_equal(pci_bar_add_region(a, 0, &ra, &err), 0);
	assert_int_equal(pci_bar_add_region(b, 0, &rb, &err), 0);
	/* The guest swaps the two BARs (through a free address) and decodes. */
	cfg_write(e, 1, PCI_BASE_ADDRESS_0, 0xc0200000, 4);
	cfg_write(e, 2, PCI_BASE_ADDRESS_0, 0xc0000000, 4);
	cfg_write(e, 1, PCI_BASE_ADDRESS_0, 0xc0001000, 4);
	cfg_write(e, 1, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
	cfg_write(e, 2, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	cfg_write(e, 1, PCI_INTERRUPT_LINE, 0x0a, 1);
	assert_int_equal(pci_bar_address(a, 0), 0xc0001000u);
	assert_int_equal(pci_bar_address(b, 0), 0xc0000000u);
	pci_device_save_config(a, ca);
	pci_device_save_config(b, cb);
	/* Back to power-on, as a fresh VM's devices are. */
	cfg_write(e, 1, PCI_COMMAND, 0, 2);
	cfg_write(e, 2, PCI_COMMAND, 0, 2);
	cfg_write(e, 1, PCI_BASE_ADDRESS_0, 0xc0000000, 4);
	cfg_write(e, 2, PCI_BASE_ADDRESS_0, 0xc0001000, 4);
	cfg_write(e, 1, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	cfg_write(e, 2, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	assert_int_equal(pci_bar_address(a, 0), 0xc0000000u);

	/* Hostile states first: nothing changes. */
	memcpy(bad, ca, sizeof(bad));
	bad[PCI_DEVICE_ID] ^= 1;
	assert_int_equal(pci_device_load_config(a, bad, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "read-only config byte 0x02"));
	memcpy(bad, ca, sizeof(bad));
	bad[PCI_BASE_ADDRESS_0] |= 0x8; /* the prefetch bit: read-only */
	assert_int_equal(pci_device_load_config(a, bad, &err), -EINVAL);
	memcpy(bad, ca, sizeof(bad));
	bad[PCI_STATUS + 1] |= PCI_STATUS_SIG_SYSTEM_ERROR >> 8;
	assert_int_equal(pci_device_load_config(a, bad, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "status bits"));
	memcpy(bad, ca, sizeof(bad));
	bad[0x40] = 1; /* past the header: read-only, no capability here */
	assert_int_equal(pci_device_load_config(a, bad, &err), -EINVAL);
	assert_int_equal(pci_bar_address(a, 0), 0xc0000000u);

	/* a first: its target is still b's; once b is loaded both are mapped. */
	la.map_calls = lb.map_calls = 0;
	assert_int_equal(pci_device_load_config(a, ca, &err), 0);
	assert_int_equal(pci_bar_address(a, 0), PCI_BAR_UNMAPPED);
	assert_int_equal(pci_device_load_config(b, cb, &err), 0);
	assert_int_equal(pci_bar_address(a, 0), 0xc0001000u);
	assert_int_equal(pci_bar_address(b, 0), 0xc0000000u);
	assert_int_equal(la.mapped_at, 0xc0001000u); /* the map hook followed */
	assert_int_equal(lb.mapped_at, 0xc0000000u);
	assert_int_equal(cfg_read(e, 1, PCI_COMMAND, 2), PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	assert_int_equal(cfg_read(e, 1, PCI_INTERRUPT_LINE, 1), 0x0a);
	la.calls = 0;
	assert_true(mmio_hit(e, 0xc0001000));
	assert_int_equal(la.calls, 1);
	env_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_host_bridge),
	    cmocka_unit_test(test_address_latch),
	    cmocka_unit_test(test_narrow_accesses),
	    cmocka_unit_test(test_read_only_fields),
	    cmocka_unit_test(test_bar_sizing),
	    cmocka_unit_test(test_bar_placement),
	    cmocka_unit_test(test_slots_run_out),
	    cmocka_unit_test(test_command_enables_decoding),
	    cmocka_unit_test(test_bar_conflicts),
	    cmocka_unit_test(test_mem64_bar_mapping),
	    cmocka_unit_test(test_io_bar_mapping),
	    cmocka_unit_test(test_capability_list),
	    cmocka_unit_test(test_config_hooks_and_bar_access),
	    cmocka_unit_test(test_host_snapshot),
	    cmocka_unit_test(test_device_config_snapshot),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
