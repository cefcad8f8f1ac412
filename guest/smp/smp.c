// SPDX-License-Identifier: MIT
/*
 * Starts every AP. Each prints its APIC id, proves it can run CPL3 code
 * (user_call with its own TSS and stacks) and checks in. Exits 0 only if all
 * N CPUs (smp.h: cpus=N or CPUID) checked in with distinct APIC ids, else
 * prints what is missing and exits 1.
 */
#include "guest.h"

static unsigned int checked_in;
static uint32_t apic_ids[GUEST_MAX_CPUS];

static long user_square(void *arg)
{
	long v = (long)arg;
	return cpl() == 3 ? v * v : -1;
}

static void check_in(unsigned int cpu, void *arg)
{
	uint32_t id = this_cpu()->apic_id;
	long sq = user_call(user_square, (void *)(long)(id + 2));

	apic_ids[cpu] = id;
	printf("smp: cpu %u: apic id %u, cpl3 %s\n", cpu, id,
	       sq == (long)(id + 2) * (id + 2) ? "ok" : "FAILED");
	if (sq == (long)(id + 2) * (id + 2))
		__atomic_add_fetch(&checked_in, 1,
				   __ATOMIC_RELEASE); /* pairs with main's acquire */
}

int main(void)
{
	unsigned int n = smp_cpu_count(), up, done;

	printf("smp: %u cpus expected\n", n);
	check_in(0, NULL);
	up = smp_start(check_in, NULL);
	uint64_t t0 = rdtsc();
	while ((done = __atomic_load_n(&checked_in, __ATOMIC_ACQUIRE)) < n &&
	       rdtsc() - t0 < SMP_START_TIMEOUT_TSC)
		cpu_relax();
	if (done != n) {
		printf("smp: only %u of %u cpus checked in (%u came online)\n", done, n, up);
		return 1;
	}
	for (unsigned int i = 0; i < n; i++)
		for (unsigned int j = i + 1; j < n; j++)
			if (apic_ids[i] == apic_ids[j]) {
				printf("smp: cpus %u and %u share apic id %u\n", i, j, apic_ids[i]);
				return 1;
			}
	printf("smp: all %u cpus checked in\n", n);
	return 0;
}
