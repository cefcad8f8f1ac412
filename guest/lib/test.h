/* SPDX-License-Identifier: MIT */
/*
 * Assertions for test guests. On failure they print
 *   "ASSERT failed at FILE:LINE: EXPR" (plus both values for ASSERT_EQ/NE)
 * and exit with GUEST_EXIT_PANIC (120). Any CPU, any CPL. The condition is
 * evaluated exactly once.
 */
#ifndef GUEST_TEST_H
#define GUEST_TEST_H

#include <stdint.h>

_Noreturn void guest_assert_fail(const char *file, int line, const char *expr);
_Noreturn void guest_assert_fail_cmp(const char *file, int line, const char *a_expr, const char *op,
				     const char *b_expr, uint64_t a, uint64_t b);
_Noreturn void guest_panic_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define ASSERT(cond)                                                                               \
	do {                                                                                       \
		if (!(cond))                                                                       \
			guest_assert_fail(__FILE__, __LINE__, #cond);                              \
	} while (0)

#define ASSERT_CMP_(a, op, b)                                                                      \
	do {                                                                                       \
		uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                                   \
		if (!(a_ op b_))                                                                   \
			guest_assert_fail_cmp(__FILE__, __LINE__, #a, #op, #b, a_, b_);            \
	} while (0)

/* Compare as uint64_t (signed values compare equal iff their bits do). */
#define ASSERT_EQ(a, b) ASSERT_CMP_(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_CMP_(a, !=, b)

/* Print "PANIC at FILE:LINE: message" and exit 120. */
#define PANIC(...) guest_panic_at(__FILE__, __LINE__, __VA_ARGS__)

#endif
