/* SPDX-License-Identifier: MIT */
/* Unit tests for vmm/disasm.c: known byte sequences against expected text
 * (cross-checked with objdump -M intel), truncation, bad bytes, hints. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/disasm.h"

#define LINES 16

static void test_64bit_sequence(void **state)
{
	static const uint8_t code[] = {
	    0x48, 0x89, 0xe5,			/* mov rbp, rsp */
	    0xe9, 0x10, 0x00, 0x00, 0x00,	/* jmp +0x10 */
	    0xf0, 0x48, 0x0f, 0xc7, 0x0e,	/* lock cmpxchg16b [rsi] */
	    0x0f, 0xae, 0x2f,			/* xrstor [rdi] */
	    0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, /* movabs rax, imm64 */
	    0x44, 0x33, 0x22, 0x11,		/* */
	    0x8b, 0x44, 0x24, 0x08,		/* mov eax, [rsp+8] */
	    0xf4,				/* hlt */
	};
	struct disasm_line out[LINES];
	int n = disasm_lines(64, 0xffffffff81000000ull, code, sizeof(code), out, LINES);

	assert_int_equal(n, 7);
	assert_string_equal(out[0].text,
			    "ffffffff81000000:  48 89 e5                       mov rbp, rsp");
	assert_string_equal(
	    out[1].text,
	    "ffffffff81000003:  e9 10 00 00 00                 jmp 0xFFFFFFFF81000018");
	assert_string_equal(
	    out[2].text, "ffffffff81000008:  f0 48 0f c7 0e                 lock cmpxchg16b [rsi]");
	assert_string_equal(out[3].text,
			    "ffffffff8100000d:  0f ae 2f                       xrstor [rdi]");
	/* 10 bytes fill the column exactly. */
	assert_string_equal(out[4].text,
			    "ffffffff81000010:  48 b8 88 77 66 55 44 33 22 11  mov rax, "
			    "0x1122334455667788");
	assert_string_equal(
	    out[5].text, "ffffffff8100001a:  8b 44 24 08                    mov eax, [rsp+0x08]");
	assert_string_equal(out[6].text, "ffffffff8100001e:  f4                             hlt");
}

static void test_long_instruction_pushes_text(void **state)
{
	/* 12 bytes: mov qword ptr [rax+0x11223344], 0x55667788 with a segment prefix. */
	static const uint8_t code[] = {0x64, 0x48, 0xc7, 0x80, 0x44, 0x33,
				       0x22, 0x11, 0x88, 0x77, 0x66, 0x55};
	struct disasm_line out[LINES];

	assert_int_equal(disasm_lines(64, 0x1000, code, sizeof(code), out, LINES), 1);
	assert_string_equal(out[0].text, "0000000000001000:  64 48 c7 80 44 33 22 11 88 77 66 55  "
					 "mov qword ptr fs:[rax+0x11223344], 0x55667788");
}

static void test_32bit_and_wrap(void **state)
{
	static const uint8_t code[] = {
	    0xb8, 0x78, 0x56, 0x34, 0x12, /* mov eax, 0x12345678 */
	    0xe7, 0xf4,			  /* out 0xf4, eax */
	    0x06,			  /* push es (valid outside 64-bit mode) */
	    0x0f, 0x01, 0xd0,		  /* xgetbv */
	};
	struct disasm_line out[LINES];
	int n = disasm_lines(32, 0xfffffffc, code, sizeof(code), out, LINES);

	assert_int_equal(n, 4);
	assert_string_equal(out[0].text,
			    "fffffffc:  b8 78 56 34 12                 mov eax, 0x12345678");
	/* The address wraps at 4 GiB in 32-bit mode. */
	assert_string_equal(out[1].text, "00000001:  e7 f4                          out 0xF4, eax");
	assert_string_equal(out[2].text, "00000003:  06                             push es");
	assert_string_equal(out[3].text, "00000004:  0f 01 d0                       xgetbv");
}

static void test_16bit(void **state)
{
	static const uint8_t code[] = {
	    0xb8, 0x34, 0x12,			/* mov ax, 0x1234 */
	    0x66, 0xb8, 0x78, 0x56, 0x34, 0x12, /* mov eax, 0x12345678 */
	    0xeb, 0xfe,				/* jmp $ */
	};
	struct disasm_line out[LINES];
	int n = disasm_lines(16, 0xffff0, code, sizeof(code), out, LINES);

	assert_int_equal(n, 3);
	assert_string_equal(out[0].text,
			    "000ffff0:  b8 34 12                       mov ax, 0x1234");
	assert_string_equal(out[1].text,
			    "000ffff3:  66 b8 78 56 34 12              mov eax, 0x12345678");
	/* Branch targets are offsets within CS in 16-bit mode. */
	assert_string_equal(out[2].text, "000ffff9:  eb fe                          jmp 0xFFF9");
}

static void test_bad_byte_stops(void **state)
{
	/* 0x06 is invalid in 64-bit mode; what follows must not be decoded. */
	static const uint8_t code[] = {0x90, 0x06, 0x90, 0x90};
	struct disasm_line out[LINES];
	int n = disasm_lines(64, 0x2000, code, sizeof(code), out, LINES);

	assert_int_equal(n, 2);
	assert_string_equal(out[0].text, "0000000000002000:  90                             nop");
	assert_string_equal(out[1].text, "0000000000002001:  06                             (bad)");
}

static void test_bad_lock_prefix(void **state)
{
	/* lock on a register-only instruction is #UD: not an instruction. */
	static const uint8_t code[] = {0xf0, 0x48, 0x89, 0xe5};
	struct disasm_line out[LINES];

	assert_int_equal(disasm_lines(64, 0, code, sizeof(code), out, LINES), 1);
	assert_string_equal(out[0].text, "0000000000000000:  f0                             (bad)");
}

static void test_truncated(void **state)
{
	/* movabs needs 10 bytes; only 4 given after a complete nop. */
	static const uint8_t code[] = {0x90, 0x48, 0xb8, 0x11, 0x22};
	struct disasm_line out[LINES];
	int n = disasm_lines(64, 0x3000, code, sizeof(code), out, LINES);

	assert_int_equal(n, 2);
	assert_string_equal(out[1].text,
			    "0000000000003001:  48 b8 11 22                    (truncated)");

	/* A single prefix byte alone is truncated too. */
	n = disasm_lines(64, 0x3000, code + 1, 1, out, LINES);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].text,
			    "0000000000003000:  48                             (truncated)");
}

static void test_overlong_prefixes_are_bad(void **state)
{
	/* 15 prefixes and an opcode exceed the 15-byte limit. */
	uint8_t code[16];

	memset(code, 0x66, 15);
	code[15] = 0x90;
	struct disasm_line out[LINES];

	assert_int_equal(disasm_lines(64, 0, code, sizeof(code), out, LINES), 1);
	assert_non_null(strstr(out[0].text, "(bad)"));
}

static void test_max_lines_and_empty(void **state)
{
	static const uint8_t nops[8] = {0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90};
	struct disasm_line out[LINES];

	memset(out, 'x', sizeof(out));
	assert_int_equal(disasm_lines(64, 0, nops, sizeof(nops), out, 3), 3);
	/* Nothing beyond max_lines is touched. */
	assert_int_equal(out[3].text[0], 'x');
	assert_int_equal(disasm_lines(64, 0, nops, 0, out, LINES), 0);
	assert_int_equal(disasm_lines(64, 0, nops, sizeof(nops), out, 0), 0);
	assert_int_equal(disasm_lines(64, 0, nops, sizeof(nops), out, LINES), 8);
}

static void test_bad_args(void **state)
{
	static const uint8_t nop = 0x90;
	struct disasm_line out[1];

	assert_int_equal(disasm_lines(8, 0, &nop, 1, out, 1), -EINVAL);
	assert_int_equal(disasm_lines(0, 0, &nop, 1, out, 1), -EINVAL);
	assert_int_equal(disasm_lines(64, 0, &nop, 1, out, -1), -EINVAL);
	assert_int_equal(disasm_lines(64, 0, NULL, 1, out, 1), -EINVAL);
	assert_int_equal(disasm_lines(64, 0, &nop, 1, NULL, 1), -EINVAL);
}

struct hint_case {
	int bits;
	uint8_t bytes[8];
	size_t len;
	const char *insn; /* NULL: no hint expected */
	const char *features;
	const char *linux_cmdline;
};

static const struct hint_case hint_cases[] = {
    {64, {0xf0, 0x48, 0x0f, 0xc7, 0x0e}, 5, "lock cmpxchg16b", "-cx16", NULL},
    {64, {0x48, 0x0f, 0xc7, 0x0e}, 4, "cmpxchg16b", "-cx16", NULL},
    {64, {0x0f, 0xae, 0x27}, 3, "xsave", "-xsave", "noxsave"},
    {64, {0x48, 0x0f, 0xae, 0x27}, 4, "xsave64", "-xsave", "noxsave"},
    {64, {0x0f, 0xae, 0x2f}, 3, "xrstor", "-xsave", "noxsave"},
    {64, {0x48, 0x0f, 0xae, 0x2f}, 4, "xrstor64", "-xsave", "noxsave"},
    {64, {0x0f, 0xae, 0x37}, 3, "xsaveopt", "-xsave", "noxsave"},
    {64, {0x0f, 0xc7, 0x27}, 3, "xsavec", "-xsave", "noxsave"},
    {64, {0x0f, 0xc7, 0x2f}, 3, "xsaves", "-xsave", "noxsave"},
    {64, {0x0f, 0xc7, 0x1f}, 3, "xrstors", "-xsave", "noxsave"},
    {64, {0x0f, 0x01, 0xd0}, 3, "xgetbv", "-xsave", "noxsave"},
    {64, {0x0f, 0x01, 0xd1}, 3, "xsetbv", "-xsave", "noxsave"},
    {32, {0x0f, 0xae, 0x2f}, 3, "xrstor", "-xsave", "noxsave"},
    {32, {0x0f, 0x01, 0xd1}, 3, "xsetbv", "-xsave", "noxsave"},
    /* Not hinted: */
    {32, {0xf0, 0x0f, 0xc7, 0x0e}, 4, NULL, NULL, NULL}, /* lock cmpxchg8b */
    {64, {0xf0, 0x0f, 0xc7, 0x0e}, 4, NULL, NULL, NULL}, /* lock cmpxchg8b */
    {64, {0x90}, 1, NULL, NULL, NULL},			 /* nop */
    {64, {0x0f, 0xae, 0xf0}, 3, NULL, NULL, NULL},	 /* mfence */
    {64, {0xf0, 0x48, 0x0f, 0xc7}, 4, NULL, NULL, NULL}, /* truncated cmpxchg16b */
    {64, {0x0f, 0xae}, 2, NULL, NULL, NULL},		 /* truncated xrstor */
    {64, {0x06}, 1, NULL, NULL, NULL},			 /* invalid */
    {64, {0x0f, 0xae, 0x2f}, 0, NULL, NULL, NULL},	 /* empty buffer */
};

static void test_hints(void **state)
{
	for (size_t i = 0; i < sizeof(hint_cases) / sizeof(hint_cases[0]); i++) {
		const struct hint_case *c = &hint_cases[i];
		struct disasm_hint h = {.insn = "untouched", .cpu_features = "untouched"};
		bool found = disasm_emulation_hint(c->bits, c->bytes, c->len, &h);

		if (!c->insn) {
			if (found || strcmp(h.insn, "untouched") ||
			    strcmp(h.cpu_features, "untouched"))
				fail_msg("case %zu: unexpected hint %s", i, h.insn);
			continue;
		}
		if (!found)
			fail_msg("case %zu: no hint, expected %s", i, c->insn);
		if (strcmp(h.insn, c->insn) || strcmp(h.cpu_features, c->features))
			fail_msg("case %zu: got %s/%s, expected %s/%s", i, h.insn, h.cpu_features,
				 c->insn, c->features);
		if (c->linux_cmdline ? !h.linux_cmdline || strcmp(h.linux_cmdline, c->linux_cmdline)
				     : h.linux_cmdline != NULL)
			fail_msg("case %zu: linux_cmdline %s", i,
				 h.linux_cmdline ? h.linux_cmdline : "(null)");
	}
}

static void test_hint_bad_args(void **state)
{
	static const uint8_t code[] = {0x0f, 0x01, 0xd0};
	struct disasm_hint h;

	assert_false(disasm_emulation_hint(12, code, sizeof(code), &h));
	assert_false(disasm_emulation_hint(64, NULL, sizeof(code), &h));
	assert_false(disasm_emulation_hint(64, code, sizeof(code), NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_64bit_sequence),
	    cmocka_unit_test(test_long_instruction_pushes_text),
	    cmocka_unit_test(test_32bit_and_wrap),
	    cmocka_unit_test(test_16bit),
	    cmocka_unit_test(test_bad_byte_stops),
	    cmocka_unit_test(test_bad_lock_prefix),
	    cmocka_unit_test(test_truncated),
	    cmocka_unit_test(test_overlong_prefixes_are_bad),
	    cmocka_unit_test(test_max_lines_and_empty),
	    cmocka_unit_test(test_bad_args),
	    cmocka_unit_test(test_hints),
	    cmocka_unit_test(test_hint_bad_args),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
