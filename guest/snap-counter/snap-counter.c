// SPDX-License-Identifier: MIT
/*
 * Counts from 1 to rounds=N (default 200), printing "count K" for each,
 * with compute at CPL3 between counts (spin=M rounds of work, default
 * 2000000). Every count feeds a running checksum kept in registers and
 * memory; at the end it prints "snap-counter: done" and exits 0 only if the
 * checksum equals the one computed from the formula, i.e. no count was
 * skipped or repeated. Meant to be snapshotted and restored mid-run: the
 * host then checks that the outputs of both runs join into one sequence.
 */
#include "guest.h"

struct work {
	uint64_t k;
	uint64_t spin;
	uint64_t acc;
};

/* At CPL3: mix the count into the accumulator slowly enough to take time. */
static long step(void *arg)
{
	struct work *w = arg;
	uint64_t x = w->acc ^ (w->k * 0x9e3779b97f4a7c15ull);

	for (uint64_t i = 0; i < w->spin; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		__asm__ volatile("" : "+r"(x)); /* keep the loop: it is there to take time */
	}
	w->acc = w->acc * 31 + w->k;
	return 0;
}

/* At CPL3 too: the checksum the counts must produce (CPL0 is emulated,
 * far too slow for a big rounds=). */
static long expected(void *arg)
{
	uint64_t *p = arg, rounds = p[0], e = 0;

	for (uint64_t k = 1; k <= rounds; k++)
		e = e * 31 + k;
	p[1] = e;
	return 0;
}

int main(void)
{
	static struct work w;
	uint64_t rounds = 200, expect = 0;

	cmdline_get_u64("rounds", &rounds);
	w.spin = 2000000;
	cmdline_get_u64("spin", &w.spin);
	{
		uint64_t args[2] = {rounds, 0};

		user_call(expected, args);
		expect = args[1];
	}
	printf("snap-counter: counting to %lu\n", rounds);
	for (w.k = 1; w.k <= rounds; w.k++) {
		user_call(step, &w);
		printf("count %lu\n", w.k);
	}
	if (w.acc != expect) {
		printf("snap-counter: checksum 0x%lx, expected 0x%lx: a count was skipped or "
		       "repeated\n",
		       w.acc, expect);
		return 1;
	}
	printf("snap-counter: done\n");
	return 0;
}
