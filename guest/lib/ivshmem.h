/* SPDX-License-Identifier: MIT */
/*
 * ivshmem driver (PCI 1af4:1110): ivshmem-plain (shared memory only) and
 * ivshmem-doorbell (plus registers to interrupt peers, MSI-X to be
 * interrupted), under kvmini and QEMU (q35). See docs/devices.md.
 *
 * It carries its own minimal PCI code (configuration mechanism #1, bus 0,
 * memory BARs, MSI-X): CPL0 only, because 0xcf8/0xcfc fault at CPL3 on our
 * hosts. Once opened, everything else is MMIO and works at any CPL: the
 * shared memory, the doorbell, the MSI-X table.
 *
 * BAR 2 (the shared memory) is a 64-bit BAR that kvmini places above RAM,
 * beyond the 4 GiB the runtime maps: ivshmem_open moves it into the 32-bit
 * PCI hole, above every memory BAR on bus 0, if it is not there already.
 *
 * Interrupts: ivshmem_irq_init software-enables the LAPIC and masks the
 * 8259 PIC and LINT0; vectors then wait in the LAPIC until ivshmem_wait
 * opens a window with `sti; hlt`. Handlers count and EOI (ivshmem_irq_count).
 */
#ifndef GUEST_IVSHMEM_H
#define GUEST_IVSHMEM_H

#include <stdbool.h>
#include <stdint.h>

#define IVSHMEM_REG_INTRMASK   0x0
#define IVSHMEM_REG_INTRSTATUS 0x4
#define IVSHMEM_REG_IVPOSITION 0x8
#define IVSHMEM_REG_DOORBELL   0xc

#define IVSHMEM_IRQ_VECTOR 0x40 /* IDT vector of MSI-X vector 0; vector v uses 0x40 + v */
#define IVSHMEM_IRQ_TIMER  0x3f /* LAPIC timer: bounds ivshmem_wait's sleep */
#define IVSHMEM_MAX_IRQS   32

struct ivshmem_dev {
	uint8_t dev;	   /* bus 0 device number */
	uint64_t regs;	   /* BAR 0: registers */
	uint64_t shm;	   /* BAR 2: shared memory (below 4 GiB) */
	uint64_t shm_size; /* bytes */
	bool doorbell;	   /* has MSI-X: ivshmem-doorbell */
	uint16_t nvec;	   /* MSI-X table size */
	uint64_t msix;	   /* MSI-X table address */
	uint32_t id;	   /* IVPOSITION: our peer ID (0 for plain) */
	bool moved;	   /* ivshmem_open moved BAR 2 */
};

/*
 * Find the @index-th (0-based) ivshmem function on bus 0, enable memory
 * decoding and bus mastering (moving BAR 2 below 4 GiB if needed) and,
 * for a doorbell device, MSI-X with every vector masked. CPL0. Returns 0,
 * -ENOENT if there is no such device, -ENOSPC if BAR 2 does not fit below
 * the IOAPIC.
 */
int ivshmem_open(unsigned index, struct ivshmem_dev *d);

/* Software-enable this CPU's LAPIC, mask the PIC and LINT0, install the
 * handlers. CPL0, once, before routing vectors. */
void ivshmem_irq_init(void);

/* Route MSI-X vector @v to IDT vector IVSHMEM_IRQ_VECTOR + v on this CPU
 * and unmask it. Any CPL (MMIO). */
void ivshmem_route(const struct ivshmem_dev *d, unsigned v);

/* Interrupts taken on MSI-X vector @v since boot (any CPL). */
uint64_t ivshmem_irq_count(unsigned v);

/* Ring vector @vec of peer @peer. Any CPL (MMIO). */
static inline void ivshmem_ring(const struct ivshmem_dev *d, uint32_t peer, uint32_t vec)
{
	*(volatile uint32_t *)(d->regs + IVSHMEM_REG_DOORBELL) = peer << 16 | (vec & 0xffff);
}

static inline uint32_t ivshmem_read_reg(const struct ivshmem_dev *d, unsigned off)
{
	return *(volatile uint32_t *)(d->regs + off);
}

static inline void ivshmem_write_reg(const struct ivshmem_dev *d, unsigned off, uint32_t v)
{
	*(volatile uint32_t *)(d->regs + off) = v;
}

/*
 * Halt until *@word != @old or about @max_ms (at most 4000) milliseconds
 * pass (the LAPIC timer wakes the CPU), with interrupts enabled only while
 * halted. Returns true if the word changed before the timer fired, false
 * if the timer fired first (whatever the word reads now): an interrupt
 * that should have come did not. Any CPL: from CPL3 it is one kernel_call.
 */
bool ivshmem_wait(volatile uint32_t *word, uint32_t old, uint32_t max_ms);

#endif
