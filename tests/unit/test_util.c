/* SPDX-License-Identifier: MIT */
/* Unit tests for vmm/util.c: err_set, parse_size, parse_uint. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/util.h"

#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define TiB (1ULL << 40)
#define PiB (1ULL << 50)
#define EiB (1ULL << 60)

static void test_err_set(void **state)
{
	struct errbuf err = {{0}};
	char big[1000];

	assert_int_equal(err_set(&err, EINVAL, "bad size '%s'", "12X"), -EINVAL);
	assert_string_equal(err.msg, "bad size '12X'");
	assert_int_equal(err_set(&err, ERANGE, "%d", 42), -ERANGE);
	assert_string_equal(err.msg, "42");
	/* Long messages are truncated, still terminated. */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(err_set(&err, E2BIG, "%s", big), -E2BIG);
	assert_int_equal(strlen(err.msg), sizeof(err.msg) - 1);
	/* Quoted input cannot split the line (found by tests/fuzz/fuzz_cli). */
	assert_int_equal(err_set(&err, EINVAL, "--disk '%s': bad", "a\nb\r\tc\x1b[2J\x7f"),
			 -EINVAL);
	assert_string_equal(err.msg, "--disk 'a?b??c?[2J?': bad");
	/* A NULL errbuf only returns the code. */
	assert_int_equal(err_set(NULL, ENOMEM, "x"), -ENOMEM);
}

struct size_case {
	const char *s;
	int ret;
	uint64_t val;
};

static const struct size_case size_cases[] = {
    /* good */
    {"0", 0, 0},
    {"1", 0, 1},
    {"007", 0, 7},
    {"4096", 0, 4096},
    {"512B", 0, 512},
    {"512b", 0, 512},
    {"0K", 0, 0},
    {"1k", 0, KiB},
    {"1K", 0, KiB},
    {"1KB", 0, KiB},
    {"1kb", 0, KiB},
    {"1Kb", 0, KiB},
    {"1KiB", 0, KiB},
    {"1kib", 0, KiB},
    {"1KIB", 0, KiB},
    {"64M", 0, 64 * MiB},
    {"64MiB", 0, 64 * MiB},
    {"2g", 0, 2 * GiB},
    {"2GB", 0, 2 * GiB},
    {"3GiB", 0, 3 * GiB},
    {"1T", 0, TiB},
    {"1TiB", 0, TiB},
    {"2P", 0, 2 * PiB},
    {"15E", 0, 15 * EiB},
    {"15EiB", 0, 15 * EiB},
    {"18446744073709551615", 0, UINT64_MAX},
    {"18446744073709551615B", 0, UINT64_MAX},
    {"16777215T", 0, 16777215 * TiB},
    {"17179869183G", 0, 17179869183ULL * GiB},
    /* syntax */
    {"", -EINVAL, 0},
    {"K", -EINVAL, 0},
    {"KiB", -EINVAL, 0},
    {"B", -EINVAL, 0},
    {"-1", -EINVAL, 0},
    {"+1", -EINVAL, 0},
    {" 1", -EINVAL, 0},
    {"1 ", -EINVAL, 0},
    {"1\n", -EINVAL, 0},
    {"\t1", -EINVAL, 0},
    {"1 K", -EINVAL, 0},
    {"12X", -EINVAL, 0},
    {"1.5G", -EINVAL, 0},
    {"1,5G", -EINVAL, 0},
    {"0x10", -EINVAL, 0},
    {"1e3", -EINVAL, 0},
    {"1Ki", -EINVAL, 0},
    {"1iB", -EINVAL, 0},
    {"1KBB", -EINVAL, 0},
    {"1KiBB", -EINVAL, 0},
    {"1KK", -EINVAL, 0},
    {"1BK", -EINVAL, 0},
    {"1Z", -EINVAL, 0},
    {"1Y", -EINVAL, 0},
    {"1GiG", -EINVAL, 0},
    {"99999999999999999999X", -EINVAL, 0}, /* syntax wins over range */
    /* range */
    {"18446744073709551616", -ERANGE, 0},
    {"99999999999999999999", -ERANGE, 0},
    {"99999999999999999999K", -ERANGE, 0},
    {"184467440737095516150", -ERANGE, 0},
    {"16E", -ERANGE, 0},
    {"16EiB", -ERANGE, 0},
    {"16384P", -ERANGE, 0},
    {"16777216T", -ERANGE, 0},
    {"17179869184G", -ERANGE, 0},
    {"18014398509481984K", -ERANGE, 0},
};

static void test_parse_size(void **state)
{
	for (size_t i = 0; i < sizeof(size_cases) / sizeof(size_cases[0]); i++) {
		const struct size_case *c = &size_cases[i];
		uint64_t v = 0xdeadbeef;
		int r = parse_size(c->s, &v);

		if (r != c->ret)
			fail_msg("parse_size(\"%s\") = %d, expected %d", c->s, r, c->ret);
		if (r == 0 && v != c->val)
			fail_msg("parse_size(\"%s\") -> %llu, expected %llu", c->s,
				 (unsigned long long)v, (unsigned long long)c->val);
		if (r != 0 && v != 0xdeadbeef)
			fail_msg("parse_size(\"%s\") wrote *out on error", c->s);
	}
	assert_int_equal(parse_size(NULL, &(uint64_t){0}), -EINVAL);
}

struct uint_case {
	const char *s;
	uint64_t min, max;
	int ret;
	uint64_t val;
};

static const struct uint_case uint_cases[] = {
    {"0", 0, 10, 0, 0},
    {"10", 0, 10, 0, 10},
    {"1", 1, 1, 0, 1},
    {"0042", 0, 100, 0, 42},
    {"18446744073709551615", 0, UINT64_MAX, 0, UINT64_MAX},
    {"11", 0, 10, -ERANGE, 0},
    {"0", 1, 10, -ERANGE, 0},
    {"18446744073709551616", 0, UINT64_MAX, -ERANGE, 0},
    {"99999999999999999999999", 0, UINT64_MAX, -ERANGE, 0},
    {"", 0, 10, -EINVAL, 0},
    {"-1", 0, 10, -EINVAL, 0},
    {"+1", 0, 10, -EINVAL, 0},
    {" 1", 0, 10, -EINVAL, 0},
    {"1 ", 0, 10, -EINVAL, 0},
    {"1K", 0, 10000, -EINVAL, 0},
    {"0x1", 0, 10, -EINVAL, 0},
    {"1.0", 0, 10, -EINVAL, 0},
    {"99999999999999999999x", 0, UINT64_MAX, -EINVAL, 0},
    {"5", 10, 1, -EINVAL, 0}, /* min > max */
};

static void test_parse_uint(void **state)
{
	for (size_t i = 0; i < sizeof(uint_cases) / sizeof(uint_cases[0]); i++) {
		const struct uint_case *c = &uint_cases[i];
		uint64_t v = 0xdeadbeef;
		int r = parse_uint(c->s, c->min, c->max, &v);

		if (r != c->ret)
			fail_msg("parse_uint(\"%s\", %llu, %llu) = %d, expected %d", c->s,
				 (unsigned long long)c->min, (unsigned long long)c->max, r, c->ret);
		if (r == 0 && v != c->val)
			fail_msg("parse_uint(\"%s\") -> %llu", c->s, (unsigned long long)v);
		if (r != 0 && v != 0xdeadbeef)
			fail_msg("parse_uint(\"%s\") wrote *out on error", c->s);
	}
	assert_int_equal(parse_uint(NULL, 0, 1, &(uint64_t){0}), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_err_set),
	    cmocka_unit_test(test_parse_size),
	    cmocka_unit_test(test_parse_uint),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
