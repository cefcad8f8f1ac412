/* SPDX-License-Identifier: MIT */
/*
 * edu (edu.c): QEMU's educational PCI device 1234:11e8, which
 * kvm-unit-tests' intel_iommu test drives through the IOMMU. Only with
 * --edu. As QEMU's (docs/specs/edu.rst there), with BAR 0 (1 MiB MMIO):
 *   0x00 id 0x010000ed (RO)    0x04 liveness: reads the inverse of the last write
 *   0x08 factorial: a write computes its factorial (done at once; status
 *        bit 0x80 then raises interrupt 0x1)
 *   0x20 status (0x80: interrupt when the factorial is done)
 *   0x24 interrupt status (RO); 0x60 raise: status |= value; 0x64 ack: &= ~value
 *   0x80 DMA source, 0x88 destination, 0x90 count, 0x98 command (bit 0
 *        start, bit 1 direction: 1 device buffer to RAM, bit 2 interrupt
 *        0x100 when done); the 4 KiB device buffer is at device address
 *        0x40000. DMA is done at the command write (QEMU waits 100 ms) through
 *        vm_dma, so the IOMMU translates it; requester id 00:slot.0.
 * Registers below 0x80 take 32-bit accesses, the DMA ones 32 or 64.
 * Interrupts: MSI (one vector, 64-bit address) when enabled, else INTx
 * pin A, a level on IOAPIC input 16 + slot % 8 (the interrupt line register
 * says which). A DMA outside the buffer, or with bus mastering off, is
 * refused (QEMU aborts); the first refusal is reported on stderr. Memory
 * decoding is on at boot, as QEMU's firmware leaves it.
 *
 * Threads: register accesses on vCPU threads (no PCI lock), config hooks on
 * vCPU threads with the PCI config lock held, then the device's.
 */
#ifndef KVMINI_EDU_H
#define KVMINI_EDU_H

#include "vmm/device.h"

#define EDU_VENDOR 0x1234
#define EDU_DEVICE 0x11e8

/* In the next free PCI slot of vm->pci. */
extern const struct device_ops edu_ops;

#endif
