// SPDX-License-Identifier: MIT
/* LAPIC setup, vector allocation and dispatch, sti/hlt waits. */
#include "guest.h"
#include "irq.h"

#define LAPIC_SVR	   0x0f0
#define LAPIC_LVT_TIMER	   0x320
#define LAPIC_LVT_LINT0	   0x350
#define LAPIC_TIMER_INIT   0x380
#define LAPIC_TIMER_DIVIDE 0x3e0
#define LVT_MASKED	   (1u << 16)
#define LVT_PERIODIC	   (1u << 17)
#define TIMER_DIVIDE_BY_16 0x3
/* KVM's LAPIC timer counts at 1 GHz (APIC bus cycle 1 ns): 625000 ticks at
 * divide-by-16 are ~10 ms. The period only bounds how late a timeout is
 * noticed; no time is measured with it. */
#define TIMER_WAKE_COUNT 625000

struct irq_slot {
	irq_fn fn;
	void *arg;
};

static struct irq_slot slots[256];
static uint64_t counts[256];
static int next_vector = IRQ_VECTOR_FIRST;
static int timer_vector = -1;
static bool lapic_on;

/* Every allocated vector's IDT entry leads here. */
static void irq_dispatch(struct trap_frame *f)
{
	unsigned int v = f->vector & 0xff;

	__atomic_add_fetch(&counts[v], 1, __ATOMIC_RELAXED);
	if (slots[v].fn)
		slots[v].fn(slots[v].arg);
	lapic_eoi();
}

static void irq_spurious(struct trap_frame *f)
{
	__atomic_add_fetch(&counts[IRQ_SPURIOUS], 1, __ATOMIC_RELAXED); /* no EOI for spurious */
}

int irq_alloc(irq_fn fn, void *arg)
{
	if (next_vector > IRQ_VECTOR_LAST)
		return -ENOSPC;
	int v = next_vector++;
	slots[v] = (struct irq_slot){fn, arg};
	trap_set_handler(v, irq_dispatch); /* publishes slots[v] before the gate */
	return v;
}

void irq_init(void)
{
	if (!lapic_on) {
		trap_set_handler(IRQ_SPURIOUS, irq_spurious);
		timer_vector = irq_alloc(NULL, NULL);
		lapic_on = true;
	}
	/*
	 * Firmware (SeaBIOS on QEMU q35) leaves the 8259 PIC running with the
	 * PIT on IRQ 0 at vector 8, reaching the CPU through LINT0 in ExtINT
	 * mode: with IF = 1 that would arrive as a "#DF". Mask the PIC and LINT0:
	 * we use MSI-X and the LAPIC timer only.
	 */
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	mmio_write32(LAPIC_BASE + LAPIC_LVT_LINT0, LVT_MASKED);
	mmio_write32(LAPIC_BASE + LAPIC_LVT_TIMER, LVT_MASKED | timer_vector);
	mmio_write32(LAPIC_BASE + LAPIC_SVR, 0x100 | IRQ_SPURIOUS); /* APIC software enable */
}

uint64_t irq_count(unsigned int vector)
{
	return __atomic_load_n(&counts[vector & 0xff], __ATOMIC_RELAXED);
}

struct wait {
	bool (*done)(void *arg);
	void *arg;
	uint64_t timeout;
};

static long irq_wait_cpl0(void *p)
{
	struct wait *w = p;
	uint64_t t0 = rdtsc();
	bool ok, armed = false;

	for (;;) {
		irq_disable();
		if ((ok = w->done(w->arg)) || rdtsc() - t0 >= w->timeout)
			break;
		if (!armed) {
			mmio_write32(LAPIC_BASE + LAPIC_TIMER_DIVIDE, TIMER_DIVIDE_BY_16);
			mmio_write32(LAPIC_BASE + LAPIC_LVT_TIMER, LVT_PERIODIC | timer_vector);
			mmio_write32(LAPIC_BASE + LAPIC_TIMER_INIT, TIMER_WAKE_COUNT);
			armed = true;
		}
		/* sti's one-instruction shadow: an interrupt pending now wakes the hlt */
		__asm__ volatile("sti; hlt" ::: "memory");
	}
	if (armed) {
		mmio_write32(LAPIC_BASE + LAPIC_TIMER_INIT, 0);
		mmio_write32(LAPIC_BASE + LAPIC_LVT_TIMER, LVT_MASKED | timer_vector);
	}
	return ok;
}

bool irq_wait(bool (*done)(void *arg), void *arg, uint64_t timeout_tsc)
{
	struct wait w = {done, arg, timeout_tsc};

	return kernel_call(irq_wait_cpl0, &w);
}

static long irq_poll_cpl0(void *unused)
{
	__asm__ volatile("sti; nop; cli" ::: "memory");
	return 0;
}

void irq_poll(void)
{
	kernel_call(irq_poll_cpl0, NULL);
}
