// SPDX-License-Identifier: MIT
/*
 * Arms the LAPIC timer in TSC-deadline mode ticks=N TSC ticks ahead
 * (default 4e9, a second or more), prints "tscdl: armed", and halts until
 * the timer interrupt comes; then prints "tscdl: fired" and exits 0.
 * Meant to be snapshotted between the two lines: a restore that loses the
 * armed deadline (IA32_TSC_DEADLINE) leaves it halted for good, and the
 * host's --timeout ends it (124).
 */
#include "guest.h"
#include "irq.h"
#include "smp.h"
#include "x86.h"

#define LAPIC_LVT_TIMER	  0x320
#define LVT_TSC_DEADLINE  (2u << 17)
#define MSR_TSC_DEADLINE  0x6e0
#define CPUID1_ECX_TSC_DL (1u << 24)

int main(void)
{
	uint32_t a, b, c, d;
	uint64_t ticks = 4000000000ull, t0;
	int vec;

	cmdline_get_u64("ticks", &ticks);
	cpuid(1, 0, &a, &b, &c, &d);
	if (!(c & CPUID1_ECX_TSC_DL)) {
		printf("tscdl: no TSC-deadline timer in CPUID\n");
		return 2;
	}
	irq_init();
	vec = irq_alloc(NULL, NULL);
	if (vec < 0) {
		printf("tscdl: no vector\n");
		return 1;
	}
	/* Our own wait below: irq_wait would take the LVT timer for its wake-ups. */
	mmio_write32(LAPIC_BASE + LAPIC_LVT_TIMER, LVT_TSC_DEADLINE | (uint32_t)vec);
	t0 = rdtsc();
	wrmsr(MSR_TSC_DEADLINE, t0 + ticks);
	printf("tscdl: armed\n");
	while (irq_count((unsigned)vec) == 0)
		__asm__ volatile("sti; hlt; cli" ::: "memory");
	printf("tscdl: fired after %lu ticks (armed for %lu)\n", rdtsc() - t0, ticks);
	return 0;
}
