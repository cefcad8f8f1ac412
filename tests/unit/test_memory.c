/* SPDX-License-Identifier: MIT */
/* Unit tests for vmm/memory.c: sizes, region split, bounds and overflow. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/layout.h"
#include "vmm/memory.h"

#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

static void test_init_rejects(void **state)
{
	static const struct {
		uint64_t size;
		int ret;
	} cases[] = {
	    {0, -EINVAL},
	    {4 * KiB, -EINVAL},
	    {MiB, -EINVAL},
	    {2 * MiB - 4 * KiB, -EINVAL},
	    {2 * MiB + 1, -EINVAL},
	    {2 * MiB + 2048, -EINVAL},
	    {64 * MiB - 1, -EINVAL},
	    {GUEST_MEM_MAX_RAM + 4 * KiB, -ERANGE},
	    {UINT64_MAX - 4095, -ERANGE},
	    {UINT64_MAX, -EINVAL}, /* not a multiple of 4 KiB: syntax first */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct guest_mem m;

		memset(&m, 0xa5, sizeof(m));
		int r = guest_mem_init(&m, cases[i].size);

		if (r != cases[i].ret)
			fail_msg("guest_mem_init(%#llx) = %d, expected %d",
				 (unsigned long long)cases[i].size, r, cases[i].ret);
		assert_int_equal(m.nregions, 0);
		guest_mem_free(&m); /* harmless after a failed init */
	}
}

static void test_small(void **state)
{
	struct guest_mem m;
	uint8_t *p;

	assert_int_equal(guest_mem_init(&m, 2 * MiB), 0);
	assert_int_equal(m.nregions, 1);
	assert_int_equal(m.ram_size, 2 * MiB);
	assert_int_equal(m.regions[0].gpa, 0);
	assert_int_equal(m.regions[0].size, 2 * MiB);

	p = guest_mem_ptr(&m, 0, 2 * MiB);
	assert_ptr_equal(p, m.regions[0].host);
	/* Fresh RAM reads as zero. */
	assert_int_equal(p[0], 0);
	assert_int_equal(p[2 * MiB - 1], 0);

	/* Last byte, last 2 bytes, one past, straddling the end. */
	assert_ptr_equal(guest_mem_ptr(&m, 2 * MiB - 1, 1), p + 2 * MiB - 1);
	assert_ptr_equal(guest_mem_ptr(&m, 2 * MiB - 2, 2), p + 2 * MiB - 2);
	assert_null(guest_mem_ptr(&m, 2 * MiB, 1));
	assert_null(guest_mem_ptr(&m, 2 * MiB - 1, 2));
	assert_null(guest_mem_ptr(&m, 0, 2 * MiB + 1));
	/* len 0 behaves like len 1. */
	assert_ptr_equal(guest_mem_ptr(&m, 2 * MiB - 1, 0), p + 2 * MiB - 1);
	assert_ptr_equal(guest_mem_ptr(&m, 0, 0), p);
	assert_null(guest_mem_ptr(&m, 2 * MiB, 0));
	/* Wraparound of gpa + len. */
	assert_null(guest_mem_ptr(&m, UINT64_MAX, 1));
	assert_null(guest_mem_ptr(&m, UINT64_MAX, 2));
	assert_null(guest_mem_ptr(&m, UINT64_MAX - 1, 3));
	assert_null(guest_mem_ptr(&m, 1, UINT64_MAX));
	assert_null(guest_mem_ptr(&m, 0, UINT64_MAX));
	assert_null(guest_mem_ptr(&m, 2 * MiB - 1, UINT64_MAX));
	/* Nothing at 4 GiB when RAM is small. */
	assert_null(guest_mem_ptr(&m, LAYOUT_MMIO32_END, 1));

	guest_mem_free(&m);
	assert_int_equal(m.nregions, 0);
	assert_null(guest_mem_ptr(&m, 0, 1));
	guest_mem_free(&m); /* twice is harmless */
}

static void test_exactly_below_hole(void **state)
{
	struct guest_mem m;

	assert_int_equal(guest_mem_init(&m, LAYOUT_MMIO32_START), 0);
	assert_int_equal(m.nregions, 1);
	assert_non_null(guest_mem_ptr(&m, LAYOUT_MMIO32_START - 1, 1));
	assert_null(guest_mem_ptr(&m, LAYOUT_MMIO32_START, 1));
	assert_null(guest_mem_ptr(&m, LAYOUT_MMIO32_END, 1));
	guest_mem_free(&m);
}

static void test_split(void **state)
{
	const uint64_t low = LAYOUT_MMIO32_START, high = 4 * KiB + GiB;
	struct guest_mem m;
	uint8_t *lo, *hi;

	assert_int_equal(guest_mem_init(&m, low + high), 0);
	assert_int_equal(m.nregions, 2);
	assert_int_equal(m.ram_size, low + high);
	assert_int_equal(m.regions[0].gpa, 0);
	assert_int_equal(m.regions[0].size, low);
	assert_int_equal(m.regions[1].gpa, LAYOUT_MMIO32_END);
	assert_int_equal(m.regions[1].size, high);
	lo = m.regions[0].host;
	hi = m.regions[1].host;

	/* Low region edges and the hole. */
	assert_ptr_equal(guest_mem_ptr(&m, low - 1, 1), lo + low - 1);
	assert_null(guest_mem_ptr(&m, low - 1, 2));
	assert_null(guest_mem_ptr(&m, low, 1));
	assert_null(guest_mem_ptr(&m, LAYOUT_IOAPIC, 4));
	assert_null(guest_mem_ptr(&m, LAYOUT_LAPIC, 4));
	assert_null(guest_mem_ptr(&m, LAYOUT_MMIO32_END - 1, 1));
	/* A range spanning low RAM, the hole and high RAM is not one region. */
	assert_null(guest_mem_ptr(&m, low - 4 * KiB, LAYOUT_MMIO32_END - low + 8 * KiB));
	assert_null(guest_mem_ptr(&m, LAYOUT_MMIO32_END - 1, 2));
	assert_null(guest_mem_ptr(&m, 0, low + high));

	/* High region edges. */
	assert_ptr_equal(guest_mem_ptr(&m, LAYOUT_MMIO32_END, high), hi);
	assert_ptr_equal(guest_mem_ptr(&m, LAYOUT_MMIO32_END + high - 1, 1), hi + high - 1);
	assert_null(guest_mem_ptr(&m, LAYOUT_MMIO32_END + high, 1));
	assert_null(guest_mem_ptr(&m, LAYOUT_MMIO32_END + high - 1, 2));
	assert_null(guest_mem_ptr(&m, LAYOUT_MMIO32_END, high + 1));
	assert_null(guest_mem_ptr(&m, LAYOUT_MMIO32_END + 1, UINT64_MAX));
	assert_null(guest_mem_ptr(&m, UINT64_MAX - 1, 2));

	/* Read/write land where the pointers say. */
	uint64_t v = 0x1122334455667788ULL, back = 0;

	assert_int_equal(guest_mem_write(&m, LAYOUT_MMIO32_END + high - 8, &v, 8), 0);
	assert_memory_equal(hi + high - 8, &v, 8);
	assert_int_equal(guest_mem_read(&m, LAYOUT_MMIO32_END + high - 8, &back, 8), 0);
	assert_true(back == v);
	assert_int_equal(guest_mem_write(&m, low - 8, &v, 8), 0);
	assert_memory_equal(lo + low - 8, &v, 8);
	guest_mem_free(&m);
}

static void test_max(void **state)
{
	struct guest_mem m;
	int r = guest_mem_init(&m, GUEST_MEM_MAX_RAM);

	/* Only address space is reserved (MAP_NORESERVE); a host that still refuses
	 * (e.g. overcommit_memory=2 or a ulimit -v) is not our bug. */
	if (r == -ENOMEM)
		skip();
	assert_int_equal(r, 0);
	assert_int_equal(m.nregions, 2);
	assert_int_equal(m.regions[1].gpa + m.regions[1].size,
			 LAYOUT_MMIO32_END + GUEST_MEM_MAX_RAM - LAYOUT_MMIO32_START);
	uint8_t one = 1;
	uint64_t last = m.regions[1].gpa + m.regions[1].size - 1;

	assert_int_equal(guest_mem_write(&m, last, &one, 1), 0);
	assert_int_equal(guest_mem_write(&m, last + 1, &one, 1), -EFAULT);
	guest_mem_free(&m);
}

static void test_read_write(void **state)
{
	struct guest_mem m;
	uint8_t buf[16], pattern[16];

	assert_int_equal(guest_mem_init(&m, 4 * MiB), 0);
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(0xa0 + i);

	assert_int_equal(guest_mem_write(&m, 0x1000, pattern, sizeof(pattern)), 0);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(guest_mem_read(&m, 0x1000, buf, sizeof(buf)), 0);
	assert_memory_equal(buf, pattern, sizeof(buf));

	/* Straddling the end: -EFAULT and nothing copied either way. */
	memset(buf, 0x55, sizeof(buf));
	assert_int_equal(guest_mem_write(&m, 4 * MiB - 8, pattern, 16), -EFAULT);
	assert_int_equal(((uint8_t *)m.regions[0].host)[4 * MiB - 8], 0);
	assert_int_equal(guest_mem_read(&m, 4 * MiB - 8, buf, 16), -EFAULT);
	assert_int_equal(buf[0], 0x55);
	assert_int_equal(guest_mem_read(&m, UINT64_MAX - 3, buf, 8), -EFAULT);
	assert_int_equal(guest_mem_write(&m, UINT64_MAX - 3, buf, 8), -EFAULT);

	/* len 0: fine inside RAM (even with NULL buffers), -EFAULT outside. */
	assert_int_equal(guest_mem_read(&m, 0, NULL, 0), 0);
	assert_int_equal(guest_mem_write(&m, 4 * MiB - 1, NULL, 0), 0);
	assert_int_equal(guest_mem_read(&m, 4 * MiB, NULL, 0), -EFAULT);
	guest_mem_free(&m);
}

/* Shared RAM: one memfd behind both regions, at the offsets the regions
 * say, sealed against resizing; a second mapping sees our writes. */
static void test_shared(void **state)
{
	uint64_t size = LAYOUT_MMIO32_START + 8 * MiB;
	struct guest_mem m;
	uint8_t *other;
	int fd;

	assert_int_equal(guest_mem_init_shared(&m, size), 0);
	assert_int_equal(m.nregions, 2);
	fd = m.regions[0].fd;
	assert_true(fd >= 0);
	assert_int_equal(m.regions[1].fd, fd);
	assert_int_equal(m.regions[0].fd_offset, 0);
	assert_int_equal(m.regions[1].fd_offset, LAYOUT_MMIO32_START);
	assert_int_equal(lseek(fd, 0, SEEK_END), (off_t)size);
	assert_int_equal(ftruncate(fd, 4096), -1); /* sealed */
	assert_int_equal(guest_mem_write(&m, LAYOUT_MMIO32_END + 4096, "vhost", 6), 0);
	other = mmap(NULL, 8 * MiB, PROT_READ, MAP_SHARED, fd, (off_t)LAYOUT_MMIO32_START);
	assert_true(other != MAP_FAILED);
	assert_string_equal((const char *)other + 4096, "vhost");
	munmap(other, 8 * MiB);
	guest_mem_free(&m);
	assert_int_equal(fcntl(fd, F_GETFD), -1); /* closed */

	/* The anonymous kind has no fd; bad sizes fail as for guest_mem_init. */
	assert_int_equal(guest_mem_init(&m, 2 * MiB), 0);
	assert_int_equal(m.regions[0].fd, -1);
	guest_mem_free(&m);
	assert_int_equal(guest_mem_init_shared(&m, 2 * MiB + 1), -EINVAL);
	assert_int_equal(m.nregions, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_rejects),
	    cmocka_unit_test(test_small),
	    cmocka_unit_test(test_exactly_below_hole),
	    cmocka_unit_test(test_split),
	    cmocka_unit_test(test_max),
	    cmocka_unit_test(test_read_write),
	    cmocka_unit_test(test_shared),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
