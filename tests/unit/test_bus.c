// SPDX-License-Identifier: MIT
/* Bus registration refuses overlaps; dispatch finds the right range. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/bus.h"

struct hit {
	int calls;
	uint64_t offset;
	uint32_t len;
	bool is_write;
};

static void record(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
	struct hit *h = opaque;

	h->calls++;
	h->offset = offset;
	h->len = len;
	h->is_write = is_write;
	if (!is_write)
		memset(data, 0x5a, len);
}

static void test_overlap_refused(void **st)
{
	struct bus b;
	struct errbuf err;
	struct hit h = {0};

	assert_int_equal(bus_init(&b, "pio"), 0);
	assert_int_equal(bus_register(&b, 0x3f8, 8, record, &h, "serial", &err), 0);
	/* Same start, inside, straddling either end, enclosing: all refused. */
	assert_int_equal(bus_register(&b, 0x3f8, 1, record, &h, "a", &err), -EEXIST);
	assert_int_equal(bus_register(&b, 0x3fa, 2, record, &h, "b", &err), -EEXIST);
	assert_int_equal(bus_register(&b, 0x3f0, 9, record, &h, "c", &err), -EEXIST);
	assert_int_equal(bus_register(&b, 0x3ff, 4, record, &h, "d", &err), -EEXIST);
	assert_int_equal(bus_register(&b, 0x300, 0x200, record, &h, "e", &err), -EEXIST);
	assert_non_null(strstr(err.msg, "serial"));
	assert_non_null(strstr(err.msg, "e"));
	/* Adjacent on both sides: accepted. */
	assert_int_equal(bus_register(&b, 0x3f0, 8, record, &h, "below", &err), 0);
	assert_int_equal(bus_register(&b, 0x400, 1, record, &h, "above", &err), 0);
	assert_int_equal(b.nranges, 3);
	bus_destroy(&b);
}

static void test_bad_ranges(void **st)
{
	struct bus b;
	struct errbuf err;

	bus_init(&b, "mmio");
	assert_int_equal(bus_register(&b, 0x1000, 0, record, NULL, "zero", &err), -EINVAL);
	assert_int_equal(bus_register(&b, UINT64_MAX - 1, 4, record, NULL, "wrap", &err), -EINVAL);
	assert_int_equal(bus_register(&b, UINT64_MAX - 3, 4, record, NULL, "end", &err), -EINVAL);
	assert_int_equal(bus_register(&b, UINT64_MAX - 4, 4, record, NULL, "top", &err), 0);
	assert_int_equal(b.nranges, 1);
	bus_destroy(&b);
}

static void test_dispatch(void **st)
{
	struct bus b;
	struct errbuf err;
	struct hit h1 = {0}, h2 = {0};
	uint32_t v = 0;

	bus_init(&b, "mmio");
	assert_int_equal(bus_register(&b, 0x2000, 0x100, record, &h2, "two", &err), 0);
	assert_int_equal(bus_register(&b, 0x1000, 0x10, record, &h1, "one", &err), 0);

	assert_true(bus_dispatch(&b, 0x1004, &v, 4, false));
	assert_int_equal(h1.calls, 1);
	assert_int_equal(h1.offset, 4);
	assert_int_equal(v, 0x5a5a5a5a);
	assert_true(bus_dispatch(&b, 0x20fc, &v, 4, true));
	assert_int_equal(h2.calls, 1);
	assert_int_equal(h2.offset, 0xfc);
	assert_true(h2.is_write);
	/* Straddling the end of a range, a gap, before everything: unhandled. */
	assert_false(bus_dispatch(&b, 0x100e, &v, 4, false));
	assert_false(bus_dispatch(&b, 0x1800, &v, 4, false));
	assert_false(bus_dispatch(&b, 0x10, &v, 1, false));
	assert_false(bus_dispatch(&b, 0x2100, &v, 1, false));
	assert_int_equal(h1.calls, 1);
	assert_int_equal(h2.calls, 1);
	bus_destroy(&b);
}

static void test_unregister(void **st)
{
	struct bus b;
	struct errbuf err;
	struct hit h = {0};
	uint8_t d = 0;

	bus_init(&b, "pio");
	assert_int_equal(bus_register(&b, 0x60, 1, record, &h, "kbd", &err), 0);
	assert_int_equal(bus_unregister(&b, 0x61), -ENOENT);
	assert_int_equal(bus_unregister(&b, 0x60), 0);
	assert_false(bus_dispatch(&b, 0x60, &d, 1, false));
	assert_int_equal(bus_register(&b, 0x60, 1, record, &h, "kbd", &err), 0);
	assert_true(bus_dispatch(&b, 0x60, &d, 1, false));
	bus_destroy(&b);
}

/* Many ranges in random order stay sorted and all findable. */
static void test_many(void **st)
{
	struct bus b;
	struct errbuf err;
	struct hit h = {0};
	uint8_t d;
	unsigned seed = 1;

	bus_init(&b, "pio");
	for (int i = 0; i < 200; i++) {
		unsigned slot;

		seed = seed * 1103515245 + 12345;
		slot = (seed >> 8) % 200;
		bus_register(&b, slot * 16, 16, record, &h, "r", &err);
	}
	for (size_t i = 1; i < b.nranges; i++)
		assert_true(b.ranges[i - 1].base + b.ranges[i - 1].len <= b.ranges[i].base);
	for (size_t i = 0; i < b.nranges; i++)
		assert_true(bus_dispatch(&b, b.ranges[i].base + 15, &d, 1, false));
	bus_destroy(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_overlap_refused),
	    cmocka_unit_test(test_bad_ranges),
	    cmocka_unit_test(test_dispatch),
	    cmocka_unit_test(test_unregister),
	    cmocka_unit_test(test_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
