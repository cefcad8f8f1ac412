// SPDX-License-Identifier: MIT
/* CPL3-only code: compiled with SSE (see guest/guest.mk). */
#include "cpl3.h"

uint64_t cpl3_xorshift(uint64_t rounds)
{
	uint64_t x = 88172645463325252ull;

	for (uint64_t i = 0; i < rounds; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return x;
}

int cpl3_sse_check(void)
{
	volatile double h = 0; /* volatile: computed at run time, in SSE registers */

	for (int i = 1; i <= 1000; i++)
		h += 1.0 / i;
	/* H(1000) = 7.4854708605503449... */
	return (long)(h * 1e6) == 7485470;
}
