// SPDX-License-Identifier: MIT
/* TSC rate from kvmclock's pvclock scale factor. */
#include "clock.h"
#include "guest.h"

#define MSR_KVM_SYSTEM_TIME_NEW	 0x4b564d01u
#define KVM_FEATURE_CLOCKSOURCE2 (1u << 3)
#define KVM_CPUID_SIGNATURE_EBX	 0x4b4d564b /* "KVMK" */

struct pvclock_time {
	uint32_t version;
	uint32_t pad0;
	uint64_t tsc_timestamp;
	uint64_t system_time;
	uint32_t tsc_to_system_mul;
	int8_t tsc_shift;
	uint8_t flags;
	uint8_t pad[2];
};

static struct pvclock_time pvclock __attribute__((aligned(64)));
static uint64_t khz_cached;
static int khz_known; /* 0 not measured yet, 1 measured */

static uint64_t measure(void)
{
	uint32_t a, b, c, d;

	cpuid(0x40000000, 0, &a, &b, &c, &d);
	if (b != KVM_CPUID_SIGNATURE_EBX || a < 0x40000001)
		return 0;
	cpuid(0x40000001, 0, &a, &b, &c, &d);
	if (!(a & KVM_FEATURE_CLOCKSOURCE2))
		return 0;
	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (uint64_t)&pvclock | 1);
	uint32_t mul = __atomic_load_n(&pvclock.tsc_to_system_mul, __ATOMIC_ACQUIRE);
	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, 0);
	if (!mul)
		return 0;
	/* ns = (ticks << shift) * mul >> 32, so Hz = 1e9 * 2^32 / mul >> shift */
	uint64_t hz = (1000000000ull << 32) / mul;
	int s = pvclock.tsc_shift;
	hz = s >= 0 ? hz >> s : hz << -s;
	return hz / 1000;
}

uint64_t tsc_khz(void)
{
	if (!__atomic_load_n(&khz_known, __ATOMIC_ACQUIRE)) {
		khz_cached = measure();
		__atomic_store_n(&khz_known, 1, __ATOMIC_RELEASE); /* pairs with the load above */
	}
	return khz_cached;
}

uint64_t tsc_khz_or_guess(void)
{
	uint64_t k = tsc_khz();

	return k ? k : 3000000;
}

uint64_t tsc_ms(uint64_t ms)
{
	return ms * tsc_khz_or_guess();
}

uint64_t tsc_to_ns(uint64_t ticks, uint64_t khz)
{
	/* ticks * 1e6 / khz, split so that ticks * 1e6 cannot overflow */
	return ticks / khz * 1000000 + ticks % khz * 1000000 / khz;
}
