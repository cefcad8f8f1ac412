// SPDX-License-Identifier: MIT
/* kvmini ctl's pure parts: the JSON helpers it shares with the QMP server,
 * the migrate URI for kvmini and each QEMU, and usage errors (exit 125
 * before any connection). The protocol itself: tests/system/test_ctl.py. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/ctl.h"
#include "vmm/json.h"

static void test_member_and_skip(void **st)
{
	const char *js = "{\"a\": [1, {\"x\": 2}], \"b\": {\"c\": \"d\"}, \"e\": true}";
	jsmntok_t t[32];
	int n = json_parse(js, strlen(js), t, 32), b, c, e;
	char s[16];

	assert_true(n > 0);
	b = json_member(js, t, n, 0, "b");
	assert_true(b > 0);
	c = json_member(js, t, n, b, "c");
	assert_true(json_str(js, &t[c], s, sizeof(s)));
	assert_string_equal(s, "d");
	e = json_member(js, t, n, 0, "e");
	assert_int_equal(t[e].type, JSMN_PRIMITIVE);
	assert_int_equal(json_member(js, t, n, 0, "x"), -1); /* only top-level members */
	assert_int_equal(json_member(js, t, n, c, "x"), -1); /* not an object */
	assert_int_equal(json_skip(t, n, 0), n);
}

static void test_parse_alloc(void **st)
{
	const char *big = "[[[[[[[[[[[[1,2,3,4,5,6,7,8,9]]]]]]]]]]]]";
	jsmntok_t *t;
	int n = json_parse_alloc(big, strlen(big), &t);

	assert_int_equal(n, 12 + 9);
	free(t);
	assert_true(json_parse_alloc("{\"a\": ", 6, &t) < 0);
	free(t);
	assert_true(json_parse_alloc("{'a': 1}", 8, &t) < 0); /* strict */
	free(t);
}

static void test_str_decode(void **st)
{
	const char *js = "[\"a\\\"b\\\\c\\/d\\u00e9\\u0001\\n\", \"\\u20ac\", \"caf\xc3\xa9\", 42]";
	jsmntok_t t[8];
	char s[64], tiny[4];

	assert_int_equal(json_parse(js, strlen(js), t, 8), 5);
	json_str_decode(js, &t[1], s, sizeof(s));
	assert_string_equal(s, "a\"b\\c/d\xc3\xa9?\n");
	json_str_decode(js, &t[2], s, sizeof(s));
	assert_string_equal(s, "\xe2\x82\xac");
	json_str_decode(js, &t[3], s, sizeof(s));
	assert_string_equal(s, "caf\xc3\xa9");
	json_str_decode(js, &t[4], s, sizeof(s));
	assert_string_equal(s, "42");
	json_str_decode(js, &t[1], tiny, sizeof(tiny)); /* truncated, terminated */
	assert_string_equal(tiny, "a\"b");
	/* escapes are refused by the plain copy */
	assert_false(json_str(js, &t[1], s, sizeof(s)));
}

static void test_escape_round_trip(void **st)
{
	const char *raw = "it's \"x\"\\y\n\x01z";
	char esc[128], js[160], back[64];
	jsmntok_t t[2];

	json_escape(esc, sizeof(esc), raw);
	assert_string_equal(esc, "it's \\\"x\\\"\\\\y\\u000a\\u0001z");
	snprintf(js, sizeof(js), "\"%s\"", esc);
	assert_int_equal(json_parse(js, strlen(js), t, 2), 1);
	json_str_decode(js, &t[0], back, sizeof(back));
	assert_string_equal(back, "it's \"x\"\\y\n?z");
}

static void test_migrate_uri(void **st)
{
	char uri[64];

	assert_int_equal(ctl_migrate_uri(uri, sizeof(uri), "/a/b.snap", 1, 7, 2), 0);
	assert_string_equal(uri, "file:/a/b.snap"); /* kvmini */
	assert_int_equal(ctl_migrate_uri(uri, sizeof(uri), "/a/b", 0, 8, 2), 0);
	assert_string_equal(uri, "file:/a/b");
	assert_int_equal(ctl_migrate_uri(uri, sizeof(uri), "/a/b", 0, 9, 0), 0);
	assert_string_equal(uri, "file:/a/b");
	assert_int_equal(ctl_migrate_uri(uri, sizeof(uri), "/a/it's", 0, 7, 2), 0);
	assert_string_equal(uri, "exec:cat > '/a/it'\\''s'"); /* QEMU 7.2: a shell */
	assert_int_equal(ctl_migrate_uri(uri, sizeof(uri), "/a/b", 0, 8, 1), 0);
	assert_string_equal(uri, "exec:cat > '/a/b'");
	assert_int_equal(ctl_migrate_uri(uri, 12, "/a/b", 0, 7, 2), -ENAMETOOLONG);
	assert_int_equal(ctl_migrate_uri(uri, 8, "/a/bcdef", 1, 0, 0), -ENAMETOOLONG);
}

static int ctl(int argc, ...)
{
	char *argv[8];
	va_list ap;

	va_start(ap, argc);
	for (int i = 0; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	return ctl_main(argc, argv);
}

/* Usage errors are found before connecting: the socket does not exist. */
static void test_usage(void **st)
{
	assert_int_equal(ctl(0), CTL_EXIT_USAGE);
	assert_int_equal(ctl(1, "/nonexistent/s"), CTL_EXIT_USAGE);
	assert_int_equal(ctl(2, "/nonexistent/s", "fly"), CTL_EXIT_USAGE);
	assert_int_equal(ctl(2, "/nonexistent/s", "snapshot"), CTL_EXIT_USAGE);
	assert_int_equal(ctl(4, "/nonexistent/s", "snapshot", "a", "b"), CTL_EXIT_USAGE);
	assert_int_equal(ctl(3, "/nonexistent/s", "raw", "{\"execute\": 1"), CTL_EXIT_USAGE);
	assert_int_equal(ctl(3, "/nonexistent/s", "raw", "{\"x\": 1}"), CTL_EXIT_USAGE);
	assert_int_equal(ctl(3, "/nonexistent/s", "events", "0"), CTL_EXIT_USAGE);
	assert_int_equal(ctl(4, "--wait", "x", "/nonexistent/s", "status"), CTL_EXIT_USAGE);
	assert_int_equal(ctl(3, "--bogus", "/nonexistent/s", "status"), CTL_EXIT_USAGE);
	assert_int_equal(ctl(1, "--help"), CTL_EXIT_OK);
	/* well-formed, and then no such socket: a connection error, also 125 */
	assert_int_equal(ctl(2, "/nonexistent/s", "status"), CTL_EXIT_USAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_member_and_skip), cmocka_unit_test(test_parse_alloc),
	    cmocka_unit_test(test_str_decode),	    cmocka_unit_test(test_escape_round_trip),
	    cmocka_unit_test(test_migrate_uri),	    cmocka_unit_test(test_usage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
