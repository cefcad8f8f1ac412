/* SPDX-License-Identifier: MIT */
/*
 * ivshmem driver (PCI 1af4:1110): ivshmem-plain (shared memory only) and
 * ivshmem-doorbell (plus registers to interrupt peers, MSI-X to be
 * interrupted), under kvmini and QEMU (q35). See docs/devices.md.
 *
 * Built on pci.h (enumeration, BARs, MSI-X) and irq.h (vectors, waiting):
 * ivshmem_open and ivshmem_route are CPL0 (configuration space, IDT);
 * everything after is MMIO and works at any CPL: the shared memory, the
 * registers, the doorbell. BAR 2 (the shared memory) may lie above 4 GiB
 * (kvmini puts 64-bit BARs above RAM): pci_dev_enable maps it.
 */
#ifndef GUEST_IVSHMEM_H
#define GUEST_IVSHMEM_H

#include <stdbool.h>
#include <stdint.h>

#include "pci.h"

#define IVSHMEM_VENDOR	       0x1af4
#define IVSHMEM_DEVICE	       0x1110
#define IVSHMEM_REG_INTRMASK   0x0
#define IVSHMEM_REG_INTRSTATUS 0x4
#define IVSHMEM_REG_IVPOSITION 0x8
#define IVSHMEM_REG_DOORBELL   0xc
#define IVSHMEM_MAX_ROUTED     8 /* MSI-X vectors ivshmem_route can route */

struct ivshmem_dev {
	struct pci_dev *pci;
	uint64_t regs;	   /* BAR 0: registers */
	uint64_t shm;	   /* BAR 2: shared memory */
	uint64_t shm_size; /* bytes */
	bool doorbell;	   /* has MSI-X: ivshmem-doorbell */
	struct pci_msix msix;
	uint32_t id;		     /* IVPOSITION at open: our peer ID (0 for plain) */
	int irq[IVSHMEM_MAX_ROUTED]; /* IDT vector of each routed MSI-X vector, or 0 */
};

/*
 * Find the @index-th (0-based) ivshmem function on bus 0 and enable it
 * (pci_dev_enable: memory decoding, bus mastering, BARs above 4 GiB
 * mapped); for a doorbell device also MSI-X, every vector masked. CPL0.
 * Returns 0, -ENODEV (no PCI), -ENOENT (no such device), or
 * pci_dev_enable's / pci_msix_enable's error.
 */
int ivshmem_open(unsigned int index, struct ivshmem_dev *d);

/*
 * Give MSI-X vector @v (< IVSHMEM_MAX_ROUTED) an IDT vector on this CPU
 * (irq_alloc: counted, no handler work) and unmask it. irq_init must have
 * run. CPL0. Returns 0, -EINVAL (not a doorbell device or no such vector)
 * or -ENOSPC (no IDT vector left).
 */
int ivshmem_route(struct ivshmem_dev *d, unsigned int v);

/* Interrupts taken on routed MSI-X vector @v so far (0 if not routed). Any CPL. */
uint64_t ivshmem_irq_count(const struct ivshmem_dev *d, unsigned int v);

/* Ring vector @vec of peer @peer. Any CPL (MMIO). */
static inline void ivshmem_ring(const struct ivshmem_dev *d, uint32_t peer, uint32_t vec)
{
	*(volatile uint32_t *)(d->regs + IVSHMEM_REG_DOORBELL) = peer << 16 | (vec & 0xffff);
}

static inline uint32_t ivshmem_read_reg(const struct ivshmem_dev *d, unsigned int off)
{
	return *(volatile uint32_t *)(d->regs + off);
}

static inline void ivshmem_write_reg(const struct ivshmem_dev *d, unsigned int off, uint32_t v)
{
	*(volatile uint32_t *)(d->regs + off) = v;
}

/*
 * Halt (irq_wait) until *@word != @old or @max_ms milliseconds pass.
 * Returns true if the word changed, false on timeout: an interrupt that
 * should have come did not. Any CPL: from CPL3 it is one kernel_call.
 */
bool ivshmem_wait(volatile uint32_t *word, uint32_t old, uint32_t max_ms);

#endif
