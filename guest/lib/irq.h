/* SPDX-License-Identifier: MIT */
/*
 * External interrupts: the local APIC, vector allocation, waiting.
 *
 * Interrupts stay off (IF = 0) everywhere in guest/lib, at CPL0 and at CPL3
 * (user_call runs with IF = 0), except inside irq_wait and irq_poll. A
 * device interrupt that arrives at any other time waits in the LAPIC's IRR
 * until the next irq_wait/irq_poll. So a handler never interrupts driver
 * code, and drivers need no locking against their own handlers.
 *
 * On our hosts (CPL0 emulated) a handler costs tens of microseconds per
 * instruction batch: keep handlers to a counter or a flag, and do the real
 * work (reaping a used ring) in the code that waited.
 */
#ifndef GUEST_IRQ_H
#define GUEST_IRQ_H

#include <stdbool.h>
#include <stdint.h>

#define IRQ_VECTOR_FIRST 0x40 /* irq_alloc hands out 0x40..0xef */
#define IRQ_VECTOR_LAST	 0xef
#define IRQ_SPURIOUS	 0xff /* LAPIC spurious vector: no handler work, no EOI */

/* A handler: CPL0, IF = 0, on the interrupted code's stack (or the trap
 * stack when the wait ran at CPL3). The runtime counts the interrupt, calls
 * it, then sends the EOI. @arg as given to irq_alloc. */
typedef void (*irq_fn)(void *arg);

/*
 * Software-enable this CPU's LAPIC (SVR, spurious vector IRQ_SPURIOUS),
 * mask the legacy 8259 PIC and LINT0 (firmware may leave the PIT ticking
 * there at a vector that collides with exceptions), and install the
 * spurious and wake-up timer vectors. CPL0 (port I/O). Idempotent; the
 * first call must come from the BSP before any irq_alloc.
 */
void irq_init(void);

/*
 * Allocate an IDT vector and install @fn (may be NULL: count only). CPL0,
 * one CPU at a time. Returns the vector, or -ENOSPC.
 */
int irq_alloc(irq_fn fn, void *arg);

/* How many times @vector has been delivered (any CPU, any CPL). */
uint64_t irq_count(unsigned int vector);

/*
 * Wait until @done(@arg) is true, halting between interrupts: the check runs
 * with interrupts off, then `sti; hlt` (no wake-up can slip between them).
 * A LAPIC timer wakes the CPU every ~10 ms so @timeout_tsc (TSC ticks) is
 * honoured even if no interrupt comes. @done runs at CPL0 with IF = 0 and
 * must not use SSE. Any CPL: at CPL3 the whole wait is one kernel_call
 * (~80 us on our hosts). Returns true if @done became true, false on
 * timeout. Interrupts are off again when it returns.
 */
bool irq_wait(bool (*done)(void *arg), void *arg, uint64_t timeout_tsc);

/* Open a one-instruction interrupt window so pending interrupts are
 * delivered now. Any CPL (CPL3: one kernel_call). */
void irq_poll(void);

/* MSI address for delivery to the LAPIC @apic_id (fixed, physical
 * destination); the MSI data is the vector (edge, fixed). */
static inline uint32_t irq_msi_address(uint32_t apic_id)
{
	return 0xfee00000u | (apic_id & 0xff) << 12;
}

#endif
