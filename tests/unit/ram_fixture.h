/* SPDX-License-Identifier: MIT */
/*
 * A cmocka fixture holding guest RAM, for the boot loader tests (test_pvh,
 * test_bzimage). Include after <cmocka.h>.
 */
#ifndef KVMINI_TEST_RAM_FIXTURE_H
#define KVMINI_TEST_RAM_FIXTURE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/memory.h"

struct fixture {
	struct guest_mem m;
};

/* Setup with @size bytes of zeroed guest RAM; -1 if the host refuses. */
static inline int ram_fixture_setup(void **state, uint64_t size)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || guest_mem_init(&f->m, size)) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static inline int ram_fixture_teardown(void **state)
{
	struct fixture *f = *state;

	guest_mem_free(&f->m);
	free(f);
	return 0;
}

/* Host pointer to the guest byte at @gpa, which must be RAM. */
static inline uint8_t *ram(struct fixture *f, uint64_t gpa)
{
	uint8_t *p = guest_mem_ptr(&f->m, gpa, 1);

	assert_non_null(p);
	return p;
}

/* A loader's refusal: @r must be -@errnum with a one-line message @msg
 * that contains @what. */
static inline void check_refusal(int r, const char *msg, int errnum, const char *what)
{
	if (r != -errnum)
		fail_msg("expected -%d (%s), got %d: '%s'", errnum, what, r, msg);
	if (!strstr(msg, what))
		fail_msg("message '%s' does not mention '%s'", msg, what);
	if (strchr(msg, '\n'))
		fail_msg("message '%s' is not one line", msg);
}

#endif
