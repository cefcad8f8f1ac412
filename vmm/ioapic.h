/* SPDX-License-Identifier: MIT */
/*
 * A userspace IOAPIC (ioapic.c) for --iommu. KVM's split irqchip
 * (KVM_CAP_SPLIT_IRQCHIP) keeps the local APICs in the kernel and leaves
 * the IOAPIC to kvmini, so that its interrupts can pass through interrupt
 * remapping (vmm/intel_iommu.h) as on hardware; KVM's own IOAPIC knows
 * nothing of remapping. With it there is no PIC and no PIT (KVM creates
 * those only with its full irqchip).
 *
 * The chip: an 82093AA as KVM models it (version 0x11, 24 pins, no EOI
 * register) at LAYOUT_IOAPIC: IOREGSEL at +0, IOWIN at +0x10; ID (0),
 * version (1), arbitration (2) and 24 redirection entries (0x10 + 2n).
 * An interrupt is sent as the MSI the redirection entry encodes (a
 * remappable entry, bit 48 set, is sent in remappable format), through
 * vm_msi_send (vmm/vm.h). Level-triggered pins keep Remote IRR until the
 * guest's EOI of the vector comes back (KVM_EXIT_IOAPIC_EOI): for that, each
 * level-triggered pin's message is also KVM's route for GSI = pin (KVM
 * exits on the EOI of vectors routed so).
 *
 * Threads: lines are driven from any thread (vCPU threads for edu's INTx,
 * the main loop for the serial port); register accesses and EOIs come on
 * vCPU threads. One lock covers the chip; it is taken before the MSI
 * router's lock.
 */
#ifndef KVMINI_IOAPIC_H
#define KVMINI_IOAPIC_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/device.h"
#include "vmm/irqchip.h"

#define IOAPIC_PINS IRQCHIP_IOAPIC_PINS

struct ioapic;

/* Registers on vm->mmio, sets vm->ioapic. Only with --iommu. */
extern const struct device_ops ioapic_ops;

/* Drive input @pin to @level (high: asserted). Out-of-range pins are
 * ignored. Any thread. */
void ioapic_set_irq(struct ioapic *io, unsigned pin, bool level);

/* The guest's local APIC EOI of @vector for a level-triggered interrupt
 * (KVM_EXIT_IOAPIC_EOI). vCPU thread. */
void ioapic_eoi(struct ioapic *io, uint8_t vector);

#endif
