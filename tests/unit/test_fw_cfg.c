/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for vmm/fw_cfg.c through the port bus, as a guest sees it:
 * selector and offset semantics, every item, reads past the end, unknown
 * keys, access widths, reset, and save/load with its refusals.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/fw_cfg.h"
#include "vmm/vm.h"

struct fixture {
	struct vm_config cfg;
	struct vm vm;
	void *dev;
};

static struct fixture *fx_new(uint64_t ram, unsigned ncpus)
{
	static struct fixture f;
	struct errbuf err = {{0}};

	memset(&f, 0, sizeof(f));
	f.cfg.mem_size = ram;
	f.cfg.ncpus = ncpus;
	f.vm.cfg = &f.cfg;
	f.vm.mem.ram_size = ram;
	assert_int_equal(bus_init(&f.vm.pio, "pio"), 0);
	assert_int_equal(fw_cfg_ops.realize(&f.vm, NULL, &f.dev, &err), 0);
	return &f;
}

static void fx_free(struct fixture *f)
{
	fw_cfg_ops.exit(f->dev);
	bus_destroy(&f->vm.pio);
}

static void sel(struct fixture *f, uint16_t key)
{
	assert_true(bus_dispatch(&f->vm.pio, FW_CFG_PORT_SEL, &key, 2, true));
}

static uint8_t rd(struct fixture *f)
{
	uint8_t b = 0xaa;

	assert_true(bus_dispatch(&f->vm.pio, FW_CFG_PORT_DATA, &b, 1, false));
	return b;
}

/* Select @key and read @n bytes, as kvm-unit-tests' fwcfg_get_u does. */
static void item(struct fixture *f, uint16_t key, uint8_t *out, size_t n)
{
	sel(f, key);
	for (size_t i = 0; i < n; i++)
		out[i] = rd(f);
}

static uint64_t item_le(struct fixture *f, uint16_t key, size_t n)
{
	uint8_t b[8];
	uint64_t v = 0;

	item(f, key, b, n);
	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

static void test_items(void **st)
{
	struct fixture *f = fx_new(256ULL << 20, 3);
	uint8_t b[20], zero[20] = {0};

	(void)st;
	item(f, FW_CFG_SIGNATURE, b, 4);
	assert_memory_equal(b, "QEMU", 4);
	/* Traditional interface, and no DMA claimed. */
	assert_int_equal(item_le(f, FW_CFG_ID, 4), FW_CFG_ID_TRADITIONAL);
	item(f, FW_CFG_UUID, b, 16);
	assert_memory_equal(b, zero, 16);
	assert_int_equal(item_le(f, FW_CFG_RAM_SIZE, 8), 256ULL << 20);
	assert_int_equal(item_le(f, FW_CFG_NB_CPUS, 2), 3);
	assert_int_equal(item_le(f, FW_CFG_MAX_CPUS, 2), 3);
	assert_int_equal(item_le(f, FW_CFG_MAX_RAM, 8), 0);
	item(f, FW_CFG_FILE_DIR, b, 4);
	assert_memory_equal(b, zero, 4);
	fx_free(f);

	/* The items follow the configuration. */
	f = fx_new(6ULL << 30, 255);
	assert_int_equal(item_le(f, FW_CFG_RAM_SIZE, 8), 6ULL << 30);
	assert_int_equal(item_le(f, FW_CFG_NB_CPUS, 2), 255);
	assert_int_equal(item_le(f, FW_CFG_MAX_CPUS, 2), 255);
	fx_free(f);
}

static void test_selector_rewinds_and_past_end(void **st)
{
	struct fixture *f = fx_new(128ULL << 20, 1);
	uint8_t b[4];

	(void)st;
	sel(f, FW_CFG_SIGNATURE);
	assert_int_equal(rd(f), 'Q');
	assert_int_equal(rd(f), 'E');
	/* Selecting again, even the same item, starts over. */
	sel(f, FW_CFG_SIGNATURE);
	assert_int_equal(rd(f), 'Q');
	/* Another item starts at its own first byte. */
	sel(f, FW_CFG_NB_CPUS);
	assert_int_equal(rd(f), 1);
	assert_int_equal(rd(f), 0);
	/* Past the end: zeros, however many. */
	for (int i = 0; i < 10; i++)
		assert_int_equal(rd(f), 0);
	item(f, FW_CFG_SIGNATURE, b, 4);
	assert_memory_equal(b, "QEMU", 4);
	assert_int_equal(rd(f), 0);
	/* The write-channel flag names the same item. */
	sel(f, FW_CFG_SIGNATURE | 0x4000);
	assert_int_equal(rd(f), 'Q');
	fx_free(f);
}

static void test_unknown_keys_read_zero(void **st)
{
	static const uint16_t keys[] = {0x04, 0x06, 0x10, 0x12, 0x18, 0x20, 0x8000, 0x8003, 0xffff};
	struct fixture *f = fx_new(128ULL << 20, 2);

	(void)st;
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		sel(f, keys[k]);
		for (int i = 0; i < 8; i++)
			assert_int_equal(rd(f), 0);
	}
	fx_free(f);
}

static void test_widths(void **st)
{
	struct fixture *f = fx_new(128ULL << 20, 1);
	uint8_t b1;
	uint16_t w = 0xffff;
	uint32_t l;

	(void)st;
	sel(f, FW_CFG_SIGNATURE);
	/* A byte read at the selector port reads data too (as QEMU). */
	b1 = 0;
	assert_true(bus_dispatch(&f->vm.pio, FW_CFG_PORT_SEL, &b1, 1, false));
	assert_int_equal(b1, 'Q');
	/* Wider reads are not data reads: 0, and the offset stays. */
	assert_true(bus_dispatch(&f->vm.pio, FW_CFG_PORT_SEL, &w, 2, false));
	assert_int_equal(w, 0);
	assert_int_equal(rd(f), 'E');
	/* Byte writes (data writes) neither select nor advance. */
	b1 = FW_CFG_NB_CPUS;
	assert_true(bus_dispatch(&f->vm.pio, FW_CFG_PORT_SEL, &b1, 1, true));
	assert_true(bus_dispatch(&f->vm.pio, FW_CFG_PORT_DATA, &b1, 1, true));
	assert_int_equal(rd(f), 'M');
	/* A 32-bit access does not fit the two ports: not ours. */
	l = FW_CFG_NB_CPUS;
	assert_false(bus_dispatch(&f->vm.pio, FW_CFG_PORT_SEL, &l, 4, true));
	assert_int_equal(rd(f), 'U');
	fx_free(f);
}

static void test_reset(void **st)
{
	struct fixture *f = fx_new(128ULL << 20, 1);

	(void)st;
	sel(f, FW_CFG_RAM_SIZE);
	rd(f);
	fw_cfg_ops.reset(f->dev);
	assert_int_equal(rd(f), 'Q');
	fx_free(f);
}

struct saved {
	uint32_t version;
	uint16_t selector;
	uint16_t pad;
	uint32_t offset;
};

static void test_save_load(void **st)
{
	struct fixture *f = fx_new(128ULL << 20, 1);
	struct errbuf err = {{0}};
	uint8_t buf[64];
	struct saved s;
	int n;

	(void)st;
	/* Mid-read of the signature. */
	sel(f, FW_CFG_SIGNATURE);
	rd(f);
	rd(f);
	assert_int_equal(fw_cfg_ops.save(f->dev, buf, 4), -ENOSPC);
	n = fw_cfg_ops.save(f->dev, buf, sizeof(buf));
	assert_int_equal(n, sizeof(struct saved));
	memcpy(&s, buf, sizeof(s));
	assert_int_equal(s.version, 1);
	assert_int_equal(s.selector, FW_CFG_SIGNATURE);
	assert_int_equal(s.offset, 2);
	/* Elsewhere now; loading brings the read back where it was. */
	sel(f, FW_CFG_RAM_SIZE);
	assert_int_equal(fw_cfg_ops.load(f->dev, buf, (size_t)n, &err), 0);
	assert_int_equal(rd(f), 'M');
	assert_int_equal(rd(f), 'U');
	assert_int_equal(rd(f), 0);

	/* Refusals; each leaves the device as it was. */
	sel(f, FW_CFG_NB_CPUS);
	assert_int_equal(fw_cfg_ops.load(f->dev, buf, (size_t)n - 1, &err), -EINVAL);
	s = (struct saved){.version = 2, .selector = FW_CFG_SIGNATURE};
	assert_int_equal(fw_cfg_ops.load(f->dev, &s, sizeof(s), &err), -EINVAL);
	s = (struct saved){.version = 1, .selector = FW_CFG_SIGNATURE, .pad = 1};
	assert_int_equal(fw_cfg_ops.load(f->dev, &s, sizeof(s), &err), -EINVAL);
	/* An offset past the item's end, or into an item that does not exist. */
	s = (struct saved){.version = 1, .selector = FW_CFG_SIGNATURE, .offset = 5};
	assert_int_equal(fw_cfg_ops.load(f->dev, &s, sizeof(s), &err), -EINVAL);
	assert_non_null(strstr(err.msg, "past the end"));
	s = (struct saved){.version = 1, .selector = 0x8000, .offset = 1};
	assert_int_equal(fw_cfg_ops.load(f->dev, &s, sizeof(s), &err), -EINVAL);
	assert_int_equal(rd(f), 1);
	/* At the very end is fine: reads give 0. */
	s = (struct saved){.version = 1, .selector = FW_CFG_UUID, .offset = 16};
	assert_int_equal(fw_cfg_ops.load(f->dev, &s, sizeof(s), &err), 0);
	assert_int_equal(rd(f), 0);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_items),
	    cmocka_unit_test(test_selector_rewinds_and_past_end),
	    cmocka_unit_test(test_unknown_keys_read_zero),
	    cmocka_unit_test(test_widths),
	    cmocka_unit_test(test_reset),
	    cmocka_unit_test(test_save_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
