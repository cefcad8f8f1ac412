// SPDX-License-Identifier: MIT
/*
 * Prints what CPUID tells this vCPU: selected feature flags by their
 * /proc/cpuinfo names, and the topology (leaf 1 APIC ID and count, leaf 0xB
 * core level), so tests can check --cpu-features and --cpus.
 */
#include "guest.h"

struct flag {
	const char *name;
	uint32_t leaf;
	int reg; /* 0 eax, 1 ebx, 2 ecx, 3 edx */
	int bit;
};

static const struct flag flags[] = {
    {"sse2", 1, 3, 26},
    {"cx16", 1, 2, 13},
    {"popcnt", 1, 2, 23},
    {"xsave", 1, 2, 26},
    {"avx", 1, 2, 28},
    {"x2apic", 1, 2, 21},
    {"hypervisor", 1, 2, 31},
    {"rdrand", 1, 2, 30},
    {"avx2", 7, 1, 5},
    {"rdtscp", 0x80000001, 3, 27},
    {"tsc_deadline_timer", 1, 2, 24},
};

int main(void)
{
	uint32_t r[4];

	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		cpuid(flags[i].leaf, 0, &r[0], &r[1], &r[2], &r[3]);
		printf("cpuid: %s=%u\n", flags[i].name, (r[flags[i].reg] >> flags[i].bit) & 1);
	}
	cpuid(1, 0, &r[0], &r[1], &r[2], &r[3]);
	printf("cpuid: leaf1 apic_id=%u logical=%u\n", r[1] >> 24, (r[1] >> 16) & 0xff);
	cpuid(0xb, 1, &r[0], &r[1], &r[2], &r[3]);
	printf("cpuid: leaf0xb cores=%u type=%u\n", r[1] & 0xffff, (r[2] >> 8) & 0xff);
	return 0;
}
