// SPDX-License-Identifier: MIT
/* LAPIC access and AP start (the real-mode part is in smp.S). */
#include "guest.h"

#define LAPIC_ID     0x020
#define LAPIC_EOI    0x0b0
#define LAPIC_SVR    0x0f0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define ICR_PENDING  (1u << 12)
#define ICR_INIT     0x4500 /* INIT, level assert */
#define ICR_SIPI     0x4600 /* start-up; vector = page number */

extern const char smp_trampoline[], smp_trampoline_end[]; /* smp.S */

static smp_fn ap_fn;
static void *ap_arg;
static unsigned int online = 1;

uint32_t lapic_id(void)
{
	return mmio_read32(LAPIC_BASE + LAPIC_ID) >> 24;
}

void lapic_eoi(void)
{
	mmio_write32(LAPIC_BASE + LAPIC_EOI, 0);
}

void lapic_send_ipi(uint32_t apic_id, uint32_t icr_low)
{
	mmio_write32(LAPIC_BASE + LAPIC_ICR_HI, apic_id << 24);
	mmio_write32(LAPIC_BASE + LAPIC_ICR_LO, icr_low);
	for (int i = 0; i < 1000 && (mmio_read32(LAPIC_BASE + LAPIC_ICR_LO) & ICR_PENDING); i++)
		cpu_relax();
}

unsigned int smp_cpu_count(void)
{
	uint32_t a, b, c, d;
	uint64_t n;

	if (!cmdline_get_u64("cpus", &n) && n >= 1 && n <= GUEST_MAX_CPUS)
		return n;
	cpuid(0, 0, &a, &b, &c, &d);
	if (a < 0xb)
		return 1;
	cpuid(0xb, 1, &a, &b, &c, &d);
	n = b & 0xffff;
	if (((c >> 8) & 0xff) != 2 || n == 0) /* subleaf 1 must be the core level */
		return 1;
	return n < GUEST_MAX_CPUS ? n : GUEST_MAX_CPUS;
}

unsigned int smp_online(void)
{
	return __atomic_load_n(&online, __ATOMIC_ACQUIRE);
}

void smp_ap_main(unsigned int index);
void smp_ap_main(unsigned int index)
{
	cpu_init(index);
	__atomic_add_fetch(&online, 1, __ATOMIC_RELEASE); /* pairs with smp_online's acquire */
	ap_fn(index, ap_arg);
	for (;;)
		__asm__ volatile("cli; hlt");
}

unsigned int smp_start(smp_fn fn, void *arg)
{
	unsigned int n = smp_cpu_count();
	uint32_t self = lapic_id();

	ap_fn = fn;
	ap_arg = arg;
	memcpy((void *)SMP_TRAMPOLINE_PA, smp_trampoline, smp_trampoline_end - smp_trampoline);
	/* Publish ap_fn and the trampoline before any AP can run. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	mmio_write32(LAPIC_BASE + LAPIC_SVR, 0x1ff); /* software-enable, spurious vector 0xff */
	for (uint32_t id = 0, sent = 0; sent + 1 < n; id++) {
		if (id == self)
			continue;
		lapic_send_ipi(id, ICR_INIT);
		lapic_send_ipi(id, ICR_SIPI | (SMP_TRAMPOLINE_PA >> 12));
		lapic_send_ipi(id, ICR_SIPI | (SMP_TRAMPOLINE_PA >> 12));
		sent++;
	}
	uint64_t t0 = rdtsc();
	while (smp_online() < n && rdtsc() - t0 < SMP_START_TIMEOUT_TSC)
		cpu_relax();
	return smp_online();
}
