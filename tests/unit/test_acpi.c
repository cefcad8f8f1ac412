/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for vmm/acpi.c: the tables' structure, pointers and checksums,
 * the fields Linux and kvm-unit-tests read, and the refusals. The AML is
 * decoded by Debian's iasl in tests/system/test_linux.py.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/acpi.h"
#include "vmm/layout.h"

#define BASE 0xe0000ULL

static uint8_t buf[64 * 1024];

static const struct acpi_config cfg4 = {
    .ncpus = 4,
    .mmio32_start = 0xc0000000,
    .mmio32_end = 0xfec00000,
    .mmio64_start = 0x100000000ULL,
    .mmio64_end = 0x140000000ULL,
    .io_start = 0xc000,
    .io_end = 0x10000,
};

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

/* The table at guest address @gpa, checked: in the buffer, signature, checksum. */
static const uint8_t *table(int used, uint64_t gpa, const char *sig)
{
	const uint8_t *t;
	uint32_t len;

	assert_true(gpa >= BASE && gpa + 36 <= BASE + (uint64_t)used);
	t = buf + (gpa - BASE);
	assert_memory_equal(t, sig, 4);
	len = rd32(t + 4);
	assert_true(gpa + len <= BASE + (uint64_t)used);
	if (strcmp(sig, "FACS"))
		assert_int_equal(sum(t, len), 0);
	return t;
}

static bool has_bytes(const uint8_t *p, size_t n, const void *s, size_t k)
{
	for (size_t i = 0; i + k <= n; i++)
		if (!memcmp(p + i, s, k))
			return true;
	return false;
}

static bool contains(const uint8_t *p, size_t n, const char *s)
{
	return has_bytes(p, n, s, strlen(s));
}

static void test_rsdp_and_roots(void **st)
{
	int used = acpi_build_tables(&cfg4, BASE, buf, sizeof(buf));
	const uint8_t *rsdt, *xsdt;

	(void)st;
	assert_true(used > 0);
	assert_memory_equal(buf, "RSD PTR ", 8);
	assert_int_equal(sum(buf, 20), 0);
	assert_int_equal(sum(buf, 36), 0);
	assert_int_equal(buf[15], 2);
	assert_int_equal(rd32(buf + 20), 36);
	rsdt = table(used, rd32(buf + 16), "RSDT");
	xsdt = table(used, rd64(buf + 24), "XSDT");
	assert_int_equal(rd32(rsdt + 4), 36 + 8);
	assert_int_equal(rd32(xsdt + 4), 36 + 16);
	/* Both roots list the FADT and the MADT. */
	assert_int_equal(rd32(rsdt + 36), rd64(xsdt + 36));
	assert_int_equal(rd32(rsdt + 40), rd64(xsdt + 44));
	table(used, rd64(xsdt + 36), "FACP");
	table(used, rd64(xsdt + 44), "APIC");
}

static void test_fadt(void **st)
{
	int used = acpi_build_tables(&cfg4, BASE, buf, sizeof(buf));
	const uint8_t *f = table(used, rd64(buf + rd64(buf + 24) - BASE + 36), "FACP");
	const uint8_t *facs, *dsdt;

	(void)st;
	assert_int_equal(rd32(f + 4), 276);
	assert_int_equal(f[8], 6);
	facs = table(used, rd32(f + 36), "FACS");
	assert_int_equal((uintptr_t)(facs - buf) % 64, 0);
	dsdt = table(used, rd32(f + 40), "DSDT");
	assert_int_equal(rd64(f + 140), rd32(f + 40)); /* X_DSDT */
	assert_int_equal(f[46] | f[47] << 8, ACPI_SCI_IRQ);
	assert_int_equal(rd32(f + 48), 0); /* SMI_CMD: always in ACPI mode */
	assert_int_equal(rd32(f + 56), ACPI_PM1_EVT);
	assert_int_equal(rd32(f + 64), ACPI_PM1_CNT);
	assert_int_equal(rd32(f + 76), ACPI_PM_TMR);
	assert_int_equal(f[88], 4);
	assert_int_equal(f[89], 2);
	assert_int_equal(f[91], 4);
	/* IA-PC boot flags: no 8042 (bit 1), no legacy devices (bit 0),
	 * no VGA (bit 2), no CMOS RTC (bit 5). */
	assert_int_equal(f[109] | f[110] << 8, (1 << 2) | (1 << 5));
	/* Flags: 32-bit timer, reset register supported, not hardware-reduced. */
	assert_true(rd32(f + 112) & (1u << 8));
	assert_true(rd32(f + 112) & (1u << 10));
	assert_false(rd32(f + 112) & (1u << 20));
	/* RESET_REG: system I/O, 8 bits, at the reset port; its value. */
	assert_int_equal(f[116], 1);
	assert_int_equal(f[117], 8);
	assert_int_equal(rd64(f + 120), ACPI_RESET_PORT);
	assert_int_equal(f[128], ACPI_RESET_VALUE);
	assert_true(contains(dsdt, rd32(dsdt + 4), "_S5_"));
	assert_false(contains(dsdt, rd32(dsdt + 4), "_S3_"));
	assert_int_equal((uint64_t)rd32(f + 36), acpi_facs_address(BASE));
}

/* --testdev: a CMOS RTC in the boot flags and \_S3 = {1, 1, 0, 0}. */
static void test_rtc_and_s3(void **st)
{
	struct acpi_config c = cfg4;
	static const uint8_t s3[] = {0x08, '\\', '_',  'S',  '3',  '_', 0x12,
				     0x06, 0x04, 0x01, 0x01, 0x00, 0x00};
	const uint8_t *f, *dsdt;
	int used;

	(void)st;
	c.cmos_rtc = c.s3 = true;
	used = acpi_build_tables(&c, BASE, buf, sizeof(buf));
	f = table(used, rd64(buf + rd64(buf + 24) - BASE + 36), "FACP");
	assert_int_equal(f[109] | f[110] << 8, 1 << 2);
	dsdt = table(used, rd32(f + 40), "DSDT");
	assert_non_null(memmem(dsdt, rd32(dsdt + 4), s3, sizeof(s3)));
	assert_int_equal((uint64_t)rd32(f + 36), acpi_facs_address(BASE));
}

static void test_madt(void **st)
{
	for (unsigned n = 1; n <= 255; n += 127) {
		struct acpi_config c = cfg4;
		int used;
		const uint8_t *m, *e, *end;
		unsigned lapics = 0, ioapics = 0, overrides = 0, nmis = 0;

		c.ncpus = n;
		used = acpi_build_tables(&c, BASE, buf, sizeof(buf));
		assert_true(used > 0);
		m = table(used, rd64(buf + rd64(buf + 24) - BASE + 44), "APIC");
		assert_int_equal(rd32(m + 36), LAYOUT_LAPIC);
		end = m + rd32(m + 4);
		for (e = m + 44; e < end; e += e[1]) {
			assert_true(e[1] >= 2 && e + e[1] <= end);
			switch (e[0]) {
			case 0:
				assert_int_equal(e[1], 8);
				assert_int_equal(e[3], lapics); /* APIC ids 0..n-1 */
				assert_int_equal(rd32(e + 4), 1);
				lapics++;
				break;
			case 1:
				assert_int_equal(rd32(e + 4), LAYOUT_IOAPIC);
				ioapics++;
				break;
			case 2:
				assert_int_equal(e[3], ACPI_SCI_IRQ);
				overrides++;
				break;
			case 4:
				nmis++;
				break;
			default:
				fail_msg("unexpected MADT entry type %u", e[0]);
			}
		}
		assert_ptr_equal(e, end);
		assert_int_equal(lapics, n);
		assert_int_equal(ioapics, 1);
		assert_int_equal(overrides, 1);
		assert_int_equal(nmis, 1);
	}
}

static void test_dsdt_devices(void **st)
{
	int used = acpi_build_tables(&cfg4, BASE, buf, sizeof(buf));
	const uint8_t *f = table(used, rd64(buf + rd64(buf + 24) - BASE + 36), "FACP");
	const uint8_t *d = table(used, rd32(f + 40), "DSDT");
	uint32_t n = rd32(d + 4);
	/* QWordMemory producer for the 64-bit window: min, max. */
	uint8_t q[16];
	uint64_t lo = cfg4.mmio64_start, hi = cfg4.mmio64_end - 1;

	(void)st;
	assert_true(contains(d, n, "PCI0"));
	assert_true(contains(d, n, "COM1"));
	assert_true(contains(d, n, "PEVT"));
	assert_true(contains(d, n, "QEMU0001"));
	assert_true(contains(d, n, "FWCF"));
	assert_true(contains(d, n, "QEMU0002"));
	/* fw_cfg's IO descriptor: 16-bit decode, 0x510..0x510, align 1, 2 ports. */
	assert_true(
	    has_bytes(d, n, (const uint8_t[]){0x47, 0x01, 0x10, 0x05, 0x10, 0x05, 1, 2}, 8));
	memcpy(q, &lo, 8);
	memcpy(q + 8, &hi, 8);
	assert_true(has_bytes(d, n, q, sizeof(q)));
	/* Without 64-bit BARs there is no 64-bit window. */
	{
		struct acpi_config c = cfg4;
		uint8_t before = 0;

		c.mmio64_end = c.mmio64_start;
		used = acpi_build_tables(&c, BASE, buf, sizeof(buf));
		f = table(used, rd64(buf + rd64(buf + 24) - BASE + 36), "FACP");
		d = table(used, rd32(f + 40), "DSDT");
		for (uint32_t i = 36; i < rd32(d + 4); i++)
			before |= d[i] == 0x8a && d[i + 1] == 43;
		assert_false(before);
	}
}

static void test_refusals(void **st)
{
	struct acpi_config c = cfg4;

	(void)st;
	c.ncpus = 0;
	assert_int_equal(acpi_build_tables(&c, BASE, buf, sizeof(buf)), -EINVAL);
	c.ncpus = 256;
	assert_int_equal(acpi_build_tables(&c, BASE, buf, sizeof(buf)), -EINVAL);
	c = cfg4;
	c.mmio32_end = c.mmio32_start;
	assert_int_equal(acpi_build_tables(&c, BASE, buf, sizeof(buf)), -EINVAL);
	c = cfg4;
	c.mmio64_end = c.mmio64_start - 1;
	assert_int_equal(acpi_build_tables(&c, BASE, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(acpi_build_tables(&cfg4, BASE + 8, buf, sizeof(buf)), -EINVAL);
	/* Every buffer too small is refused without writing past it. */
	{
		int used = acpi_build_tables(&cfg4, BASE, buf, sizeof(buf));

		for (int len = 0; len < used; len += 7) {
			memset(buf, 0xa5, sizeof(buf));
			assert_int_equal(acpi_build_tables(&cfg4, BASE, buf, (size_t)len), -ENOSPC);
			for (size_t i = (size_t)len; i < sizeof(buf); i++)
				assert_int_equal(buf[i], 0xa5);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rsdp_and_roots), cmocka_unit_test(test_fadt),
	    cmocka_unit_test(test_madt),	   cmocka_unit_test(test_dsdt_devices),
	    cmocka_unit_test(test_refusals),	   cmocka_unit_test(test_rtc_and_s3),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
